-- 0002: per-community schedule settings for reveals and mock pairing; when a member was last active.

ALTER TABLE communities ADD COLUMN reveal_time TEXT;                       -- NULL: reveal when the next round posts
ALTER TABLE communities ADD COLUMN difficulty_pattern TEXT NOT NULL DEFAULT 'easy,easy,medium,medium,medium,hard,hard';
ALTER TABLE communities ADD COLUMN mock_cadence_days INTEGER NOT NULL DEFAULT 7;
ALTER TABLE communities ADD COLUMN mock_weekday INTEGER NOT NULL DEFAULT 0;  -- 0 = Monday
ALTER TABLE communities ADD COLUMN mock_time TEXT NOT NULL DEFAULT '17:00';
ALTER TABLE members ADD COLUMN last_seen_at TEXT;
