-- 0005: what mock rounds need beyond 0001: space and pack per pair, no-shows, pause reasons,
-- and outbox rows that open a pair's private space.

ALTER TABLE outbox ADD COLUMN pair_id INTEGER REFERENCES mock_pairs(id);
ALTER TABLE mock_pairs ADD COLUMN packs TEXT NOT NULL DEFAULT '[]';    -- JSON: interviewer, interviewee, track, question ids
ALTER TABLE mock_pair_members ADD COLUMN position INTEGER NOT NULL DEFAULT 0;  -- interview order in the group
ALTER TABLE mock_pair_members ADD COLUMN reported_no_show INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mock_optins ADD COLUMN no_shows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mock_optins ADD COLUMN pause_reason TEXT;
CREATE INDEX mock_pairs_by_round ON mock_pairs (round_id);
CREATE INDEX mock_pair_members_by_member ON mock_pair_members (member_id);
