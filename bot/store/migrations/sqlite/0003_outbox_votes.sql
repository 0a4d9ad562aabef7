-- 0003: a transactional outbox for everything the bot sends on its own, peer votes, and indexes.

-- Every post, reveal, announcement and DM is first written here, in the same transaction as the
-- state change it reports; a unique key makes a second insert a no-op, so nothing is sent twice.
CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY,
    community_id   INTEGER NOT NULL REFERENCES communities(id),
    key            TEXT NOT NULL UNIQUE,
    purpose        TEXT NOT NULL,           -- post | reveal | announce | dm
    channel        TEXT,                    -- for channel messages
    member_id      INTEGER REFERENCES members(id),  -- for DMs
    daily_post_id  INTEGER REFERENCES daily_posts(id),
    message        TEXT NOT NULL,           -- JSON of a Message
    created_at     TEXT NOT NULL,
    not_before     TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    claimed_until  TEXT,
    sent_at        TEXT,
    ref            TEXT,
    failed_at      TEXT,
    last_error     TEXT
);
CREATE INDEX outbox_pending ON outbox (sent_at, failed_at, not_before);
CREATE INDEX outbox_by_post ON outbox (daily_post_id, purpose);

CREATE TABLE votes (
    submission_id  INTEGER NOT NULL REFERENCES submissions(id),
    voter_id       INTEGER NOT NULL REFERENCES members(id),
    created_at     TEXT NOT NULL,
    PRIMARY KEY (submission_id, voter_id)
);

ALTER TABLE submissions ADD COLUMN is_daily INTEGER NOT NULL DEFAULT 0;
CREATE INDEX submissions_by_post ON submissions (daily_post_id, verdict);

-- Covering index for period standings: the weekly leaderboard reads only this index.
CREATE INDEX points_standings ON points_ledger (community_id, created_at, member_id, points, track, reason, question_id);
DROP INDEX points_by_community_time;
