-- Issue 16 (a newcomer's first evening): schema changes for scoring, mock rounds and past dailies.
-- Each area appends its own statements below its heading; keep each statement self-contained.

-- scoring
-- A written answer (system-design, behavioral) counts as solved (points, announcement, first solvers)
-- at this estimated rubric coverage or more, in percent; below it the member may revise once
-- (bot/core/submissions.py). Set with /admin setup coverage; 50 was measured in that module's docstring.
ALTER TABLE communities ADD COLUMN solve_coverage INTEGER NOT NULL DEFAULT 50;

-- mock rounds
-- One outcome per pair (NULL until the first check-in): met | no-show | disputed (see bot/core/mocks.py).
ALTER TABLE mock_pairs ADD COLUMN outcome TEXT;
-- Pairs checked in before this migration: a member reported absent who also checked in, or reported
-- absent in a group someone checked in as met, is a contradiction; else a report is a no-show; else met.
UPDATE mock_pairs SET outcome = CASE
    WHEN EXISTS (SELECT 1 FROM mock_pair_members AS a WHERE a.pair_id = mock_pairs.id AND a.reported_no_show = 1
                 AND (a.checked_in IS NOT NULL OR EXISTS (SELECT 1 FROM mock_pair_members AS b
                      WHERE b.pair_id = mock_pairs.id AND b.checked_in = 'met'))) THEN 'disputed'
    WHEN EXISTS (SELECT 1 FROM mock_pair_members AS a WHERE a.pair_id = mock_pairs.id AND a.reported_no_show = 1)
        THEN 'no-show'
    WHEN EXISTS (SELECT 1 FROM mock_pair_members AS a WHERE a.pair_id = mock_pairs.id AND a.checked_in = 'met')
        THEN 'met'
END WHERE outcome IS NULL;

-- past dailies and other
-- A daily channel: NULL is "not set" (admins get a DM at post time), '' is the explicit
-- `/admin setup channel off` (bot/core/daily.py). Before this, '' only came from `/admin setup channel #`
-- (the bug of issue 16 item 11): those communities are "not set" again, so their admins hear of it.
UPDATE communities SET channel = NULL WHERE channel = '';

-- issue 17: slack
-- One deployment, many Slack workspaces (bot/adapters/slack_app.py). Bolt's installation store in our
-- database: every install of the app (who installed it, the OAuth answer as JSON) and the bot each
-- workspace uses now. Bot tokens are secrets: this file is already kept out of every sandbox.
CREATE TABLE slack_installations (
    id                    INTEGER PRIMARY KEY,
    enterprise_id         TEXT NOT NULL DEFAULT '',   -- '' outside Enterprise Grid
    team_id               TEXT NOT NULL DEFAULT '',   -- '' for an org-wide install
    user_id               TEXT NOT NULL,              -- the installer
    data                  TEXT NOT NULL,              -- slack_sdk's Installation, JSON
    installed_at          TEXT NOT NULL,
    UNIQUE (enterprise_id, team_id, user_id)
);
CREATE TABLE slack_bots (
    enterprise_id         TEXT NOT NULL DEFAULT '',
    team_id               TEXT NOT NULL DEFAULT '',
    data                  TEXT NOT NULL,              -- slack_sdk's Bot, JSON (the bot token among it)
    installed_at          TEXT NOT NULL,
    PRIMARY KEY (enterprise_id, team_id)
);
-- A workspace that uninstalled Onsite or revoked its token: nothing is sent there until it installs
-- again. Its daily channel is set aside (the community's channel becomes '' = off) and put back then.
CREATE TABLE slack_workspaces (
    team_id               TEXT PRIMARY KEY,
    installed_at          TEXT,
    uninstalled_at        TEXT,                       -- NULL while installed
    paused_channel        TEXT
);
-- OAuth `state` values already used (each is signed and expires; one use each).
CREATE TABLE slack_oauth_states (
    nonce                 TEXT PRIMARY KEY,
    expires_at            TEXT NOT NULL
);

-- issue 17: discord
-- Values the Discord adapter keeps between starts (bot/adapters/discord_app.py): the digest of the slash
-- commands last synced to Discord per application and target, so a restart syncs only what changed.
CREATE TABLE discord_state (
    key                   TEXT PRIMARY KEY,
    value                 TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);

-- issue 20: ai reviews
-- Optional AI reviews of written answers and accepted code (bot/core/review.py). One row per request:
-- its result is cached by the hash of what was reviewed, and today's rows count against the member's
-- and the community's daily budgets. Reviews never touch the ledger.
CREATE TABLE ai_reviews (
    id                    INTEGER PRIMARY KEY,
    community_id          INTEGER NOT NULL REFERENCES communities(id),
    member_id             INTEGER NOT NULL REFERENCES members(id),
    question_id           TEXT NOT NULL,
    kind                  TEXT NOT NULL,              -- 'written' | 'code'
    content_hash          TEXT NOT NULL,              -- sha256 of the question id, kind and the text reviewed
    status                TEXT NOT NULL,              -- 'pending' | 'done' | 'failed'
    result                TEXT,                       -- the validated review, JSON (done)
    note                  TEXT,                       -- why it failed, one line (failed)
    created_at            TEXT NOT NULL,
    finished_at           TEXT
);
CREATE INDEX ai_reviews_by_hash ON ai_reviews (content_hash, status);
CREATE INDEX ai_reviews_by_member ON ai_reviews (member_id, created_at);
CREATE INDEX ai_reviews_by_community ON ai_reviews (community_id, created_at);

-- issue 19: one leader for schedules
-- Several bot processes on one database (Discord shards, Slack replicas): the one holding the
-- 'scheduler' lease runs the daily/mock/plan ticks and the outbox; it renews it, and when it dies
-- another takes it over once it expires (bot/scheduler.py).
CREATE TABLE leases (
    name                  TEXT PRIMARY KEY,
    holder                TEXT NOT NULL,
    expires_at            TEXT NOT NULL
);
