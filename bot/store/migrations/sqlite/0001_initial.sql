-- 0001: communities, members, daily posts, submissions, the points ledger, mock interviews.
-- Times are UTC ISO-8601 text; dates of daily posts are the community's local date.

CREATE TABLE communities (
    id            INTEGER PRIMARY KEY,
    platform      TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    channel       TEXT,
    timezone      TEXT NOT NULL DEFAULT 'UTC',
    post_time     TEXT NOT NULL DEFAULT '09:00',
    tracks        TEXT NOT NULL DEFAULT 'coding,ml-coding,ml-theory,system-design,behavioral',
    created_at    TEXT NOT NULL,
    UNIQUE (platform, external_id)
);

CREATE TABLE members (
    id                    INTEGER PRIMARY KEY,
    community_id          INTEGER NOT NULL REFERENCES communities(id),
    external_id           TEXT NOT NULL,
    display_name          TEXT NOT NULL,
    timezone              TEXT,
    is_admin              INTEGER NOT NULL DEFAULT 0,
    hide_from_leaderboard INTEGER NOT NULL DEFAULT 0,
    created_at            TEXT NOT NULL,
    UNIQUE (community_id, external_id)
);

CREATE TABLE daily_posts (
    id            INTEGER PRIMARY KEY,
    community_id  INTEGER NOT NULL REFERENCES communities(id),
    date          TEXT NOT NULL,
    track         TEXT NOT NULL,
    question_id   TEXT NOT NULL,
    claimed_at    TEXT NOT NULL,
    posted_at     TEXT,
    message_ref   TEXT,
    revealed_at   TEXT,
    UNIQUE (community_id, date, track)
);
CREATE INDEX daily_posts_by_question ON daily_posts (community_id, track, question_id);

CREATE TABLE submissions (
    id             INTEGER PRIMARY KEY,
    community_id   INTEGER NOT NULL REFERENCES communities(id),
    member_id      INTEGER NOT NULL REFERENCES members(id),
    question_id    TEXT NOT NULL,
    track          TEXT NOT NULL,
    daily_post_id  INTEGER REFERENCES daily_posts(id),
    kind           TEXT NOT NULL,          -- code | choice | numeric | written
    content        TEXT NOT NULL,
    verdict        TEXT NOT NULL,          -- pending, accepted, wrong_answer, ... , recorded
    passed         INTEGER,
    total          INTEGER,
    score          REAL,
    detail         TEXT,                   -- JSON
    created_at     TEXT NOT NULL,
    graded_at      TEXT
);
CREATE INDEX submissions_by_member ON submissions (member_id, question_id);
CREATE INDEX submissions_by_question ON submissions (community_id, question_id);

-- Append-only: every point ever given, so standings can always be recomputed.
CREATE TABLE points_ledger (
    id             INTEGER PRIMARY KEY,
    community_id   INTEGER NOT NULL REFERENCES communities(id),
    member_id      INTEGER NOT NULL REFERENCES members(id),
    points         INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    track          TEXT,
    question_id    TEXT,
    submission_id  INTEGER REFERENCES submissions(id),
    dedupe_key     TEXT UNIQUE,
    created_at     TEXT NOT NULL
);
CREATE INDEX points_by_community_time ON points_ledger (community_id, created_at);
CREATE INDEX points_by_member ON points_ledger (member_id, created_at);
CREATE TRIGGER points_ledger_no_update BEFORE UPDATE ON points_ledger
BEGIN SELECT RAISE(ABORT, 'points_ledger is append-only'); END;
CREATE TRIGGER points_ledger_no_delete BEFORE DELETE ON points_ledger
BEGIN SELECT RAISE(ABORT, 'points_ledger is append-only'); END;

CREATE TABLE mock_optins (
    member_id      INTEGER PRIMARY KEY REFERENCES members(id),
    community_id   INTEGER NOT NULL REFERENCES communities(id),
    tracks         TEXT NOT NULL,
    level          TEXT NOT NULL DEFAULT 'mid',
    timezone       TEXT NOT NULL,
    availability   TEXT NOT NULL DEFAULT '[]',  -- JSON list of weekly windows
    active         INTEGER NOT NULL DEFAULT 1,
    paused_until   TEXT,
    silent_rounds  INTEGER NOT NULL DEFAULT 0,
    joined_at      TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE mock_avoid (
    member_id          INTEGER NOT NULL REFERENCES members(id),
    avoided_member_id  INTEGER NOT NULL REFERENCES members(id),
    created_at         TEXT NOT NULL,
    PRIMARY KEY (member_id, avoided_member_id)
);

CREATE TABLE mock_rounds (
    id             INTEGER PRIMARY KEY,
    community_id   INTEGER NOT NULL REFERENCES communities(id),
    scheduled_for  TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'open',   -- open | closed
    report         TEXT,                           -- JSON
    created_at     TEXT NOT NULL,
    UNIQUE (community_id, scheduled_for)
);

CREATE TABLE mock_pairs (
    id              INTEGER PRIMARY KEY,
    round_id        INTEGER NOT NULL REFERENCES mock_rounds(id),
    track           TEXT NOT NULL,
    space_ref       TEXT,
    suggested_time  TEXT,
    created_at      TEXT NOT NULL
);

CREATE TABLE mock_pair_members (
    pair_id        INTEGER NOT NULL REFERENCES mock_pairs(id),
    member_id      INTEGER NOT NULL REFERENCES members(id),
    first_role     TEXT NOT NULL,          -- interviewer | interviewee
    checked_in     TEXT,                   -- met | missed | NULL
    PRIMARY KEY (pair_id, member_id)
);

CREATE TABLE mock_feedback (
    id              INTEGER PRIMARY KEY,
    pair_id         INTEGER NOT NULL REFERENCES mock_pairs(id),
    from_member_id  INTEGER NOT NULL REFERENCES members(id),
    to_member_id    INTEGER NOT NULL REFERENCES members(id),
    scores          TEXT NOT NULL DEFAULT '{}',   -- JSON: rubric point -> 1..5
    text            TEXT NOT NULL DEFAULT '',
    no_show         INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    UNIQUE (pair_id, from_member_id, to_member_id)
);
