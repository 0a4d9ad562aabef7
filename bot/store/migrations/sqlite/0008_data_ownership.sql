-- 0008 (issue 10): /settings delete-my-data.
--
-- A deletion waits for confirmation: the member is shown a random token (only its SHA-256 is kept
-- here) that expires; one pending request per member, a new request replaces the old one.
CREATE TABLE erasure_requests (
    member_id     INTEGER PRIMARY KEY REFERENCES members(id),
    token_hash    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    confirmed_at  TEXT              -- set only inside the transaction that erases, which then removes the row
);

-- The ledger stays append-only, except for the rows of a member whose erasure is being carried out
-- (a confirmed request exists only inside that one transaction).
DROP TRIGGER points_ledger_no_delete;
CREATE TRIGGER points_ledger_no_delete BEFORE DELETE ON points_ledger
WHEN NOT EXISTS (SELECT 1 FROM erasure_requests WHERE member_id = OLD.member_id AND confirmed_at IS NOT NULL)
BEGIN SELECT RAISE(ABORT, 'points_ledger is append-only'); END;
