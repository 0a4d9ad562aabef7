-- 0007 (issue 10): code submissions are written down before they are graded, so a crash during
-- grading leaves a job that the next process re-grades (or reports) instead of losing it.

CREATE TABLE grading_jobs (
    id             INTEGER PRIMARY KEY,
    community_id   INTEGER NOT NULL REFERENCES communities(id),
    member_id      INTEGER NOT NULL REFERENCES members(id),
    question_id    TEXT NOT NULL,
    daily_post_id  INTEGER REFERENCES daily_posts(id),
    code           TEXT NOT NULL,
    owner          TEXT NOT NULL,          -- the process grading it: host:pid:start-ticks
    attempts       INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    finished_at    TEXT,
    outcome        TEXT                    -- recorded | abandoned (with why)
);
CREATE INDEX grading_jobs_open ON grading_jobs (finished_at) WHERE finished_at IS NULL;
