-- Data-subject requests (S34): what was asked (kind, sealed detail), when, by when it is due
-- on the working-day calendar, and where it stands.
CREATE TABLE data_requests (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL,
    detail BLOB NOT NULL,
    created_at TEXT NOT NULL,
    due_date TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    closed_at TEXT
);
CREATE INDEX data_requests_by_account ON data_requests (account_id, created_at);
