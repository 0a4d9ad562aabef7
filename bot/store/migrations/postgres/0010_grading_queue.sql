-- 0010 (issue 19 item 4): grading jobs are a queue that workers on other machines take from
-- (`python -m graders worker --database URL`). A queued job carries what the worker needs (the
-- question's spec as the judge's JSON), the worker's lease, and the judge's result; the bot records
-- the submission from that result, once, by the same compare-and-set on finished_at as before.

ALTER TABLE grading_jobs ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;  -- 1: graded by a worker process
ALTER TABLE grading_jobs ADD COLUMN spec TEXT COLLATE "C";          -- the question as the judge reads it (cleared once graded)
ALTER TABLE grading_jobs ADD COLUMN lease_until TEXT COLLATE "C";   -- the grading process holds the job until then
ALTER TABLE grading_jobs ADD COLUMN result TEXT COLLATE "C";        -- the judge's JSON verdict, written by the worker
ALTER TABLE grading_jobs ADD COLUMN graded_at TEXT COLLATE "C";
ALTER TABLE grading_jobs ADD COLUMN waiter_until TEXT COLLATE "C";  -- the submitting process shows the verdict until then; later it goes by DM
CREATE INDEX grading_jobs_queue ON grading_jobs (id) WHERE queued = 1 AND result IS NULL AND finished_at IS NULL;
