-- 0004: standings kept per period by a trigger, so a leaderboard is an index read, not an aggregate.
--
-- Every ledger row now carries the community-local date it counts for (`local_date`). A trigger adds
-- each new ledger row to the member's standing in three periods (all time, its local week starting
-- Monday, its local month), both for its track and for all tracks ('*'). The ledger stays the
-- source of truth: this table can be rebuilt from it at any time with the INSERT ... SELECT below.

ALTER TABLE points_ledger ADD COLUMN local_date TEXT;
-- Backfilling the new column is a schema change, not an edit of history: lift the guard for it.
DROP TRIGGER points_ledger_no_update;
UPDATE points_ledger SET local_date = substr(created_at, 1, 10) WHERE local_date IS NULL;
CREATE TRIGGER points_ledger_no_update BEFORE UPDATE ON points_ledger
BEGIN SELECT RAISE(ABORT, 'points_ledger is append-only'); END;

CREATE TABLE standings (
    community_id  INTEGER NOT NULL REFERENCES communities(id),
    period        TEXT NOT NULL,      -- 'all' | 'w:<monday>' | 'm:<yyyy-mm>'
    track         TEXT NOT NULL,      -- '*' (all tracks) or a track
    member_id     INTEGER NOT NULL REFERENCES members(id),
    points        INTEGER NOT NULL,
    solved        INTEGER NOT NULL,
    last_at       TEXT NOT NULL,
    hidden        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (community_id, period, track, member_id)
);
CREATE INDEX standings_rank ON standings (community_id, period, track, hidden, points DESC, last_at, member_id);

INSERT INTO standings (community_id, period, track, member_id, points, solved, last_at)
SELECT community_id, period, track, member_id, SUM(points), SUM(reason = 'solve'), MAX(created_at)
FROM (
    SELECT community_id, 'all' AS period, '*' AS track, member_id, points, reason, created_at FROM points_ledger
    UNION ALL
    SELECT community_id, 'all', track, member_id, points, reason, created_at FROM points_ledger WHERE track IS NOT NULL
    UNION ALL
    SELECT community_id, 'w:' || date(local_date, '-6 days', 'weekday 1'), '*', member_id, points, reason, created_at
    FROM points_ledger
    UNION ALL
    SELECT community_id, 'w:' || date(local_date, '-6 days', 'weekday 1'), track, member_id, points, reason, created_at
    FROM points_ledger WHERE track IS NOT NULL
    UNION ALL
    SELECT community_id, 'm:' || strftime('%Y-%m', local_date), '*', member_id, points, reason, created_at
    FROM points_ledger
    UNION ALL
    SELECT community_id, 'm:' || strftime('%Y-%m', local_date), track, member_id, points, reason, created_at
    FROM points_ledger WHERE track IS NOT NULL
)
GROUP BY community_id, period, track, member_id;
UPDATE standings SET hidden = 1 WHERE member_id IN (SELECT id FROM members WHERE hide_from_leaderboard = 1);

CREATE TRIGGER points_to_standings AFTER INSERT ON points_ledger
BEGIN
    INSERT INTO standings (community_id, period, track, member_id, points, solved, last_at, hidden)
    SELECT NEW.community_id, p.period, t.track, NEW.member_id, NEW.points, NEW.reason = 'solve', NEW.created_at,
           (SELECT hide_from_leaderboard FROM members WHERE id = NEW.member_id)
    FROM (SELECT 'all' AS period
          UNION ALL SELECT 'w:' || date(COALESCE(NEW.local_date, substr(NEW.created_at, 1, 10)), '-6 days', 'weekday 1')
          UNION ALL SELECT 'm:' || strftime('%Y-%m', COALESCE(NEW.local_date, substr(NEW.created_at, 1, 10)))) AS p,
         (SELECT '*' AS track UNION ALL SELECT NEW.track WHERE NEW.track IS NOT NULL) AS t
    WHERE 1
    ON CONFLICT (community_id, period, track, member_id) DO UPDATE SET
        points = points + excluded.points,
        solved = solved + excluded.solved,
        last_at = max(last_at, excluded.last_at);
END;

DROP INDEX points_standings;
CREATE INDEX points_by_community_time ON points_ledger (community_id, created_at);
