-- 0006 (issue 9): study plans, questions shown by /practice, timed attempts, STAR stories.

CREATE TABLE study_plans (
    id              INTEGER PRIMARY KEY,
    community_id    INTEGER NOT NULL REFERENCES communities(id),
    member_id       INTEGER NOT NULL REFERENCES members(id),
    starts_on       TEXT NOT NULL,          -- the member's local date
    ends_on         TEXT NOT NULL,          -- last day of the plan (the day before the interview)
    interview_on    TEXT,
    started_at      TEXT NOT NULL,
    stopped_at      TEXT,
    last_nudged_on  TEXT                    -- local date of the last daily nudge (one per day)
);
CREATE UNIQUE INDEX study_plans_one_active ON study_plans (member_id) WHERE stopped_at IS NULL;
CREATE INDEX study_plans_by_community ON study_plans (community_id, stopped_at);

CREATE TABLE practice_shown (
    member_id    INTEGER NOT NULL REFERENCES members(id),
    question_id  TEXT NOT NULL,
    shown_at     TEXT NOT NULL,
    times        INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (member_id, question_id)
);

CREATE TABLE timers (
    id            INTEGER PRIMARY KEY,
    community_id  INTEGER NOT NULL REFERENCES communities(id),
    member_id     INTEGER NOT NULL REFERENCES members(id),
    question_id   TEXT NOT NULL,
    track         TEXT NOT NULL,
    budget_s      INTEGER NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE UNIQUE INDEX timers_one_open ON timers (member_id, question_id) WHERE finished_at IS NULL;

CREATE TABLE stories (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    themes      TEXT NOT NULL,              -- comma-separated canonical themes
    title       TEXT NOT NULL,
    situation   TEXT NOT NULL DEFAULT '',
    task        TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL DEFAULT '',
    result      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX stories_by_member ON stories (member_id, id);
