-- Shares, download links, the transfer log and the patient's access log (issue 6).
-- Link tokens, session tokens and security codes are kept only as keyed hashes; share
-- passwords as Argon2id PHC strings. Times are RFC 3339 UTC text (sortable).

CREATE TABLE shares (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    member_id TEXT NOT NULL,
    study_pk INTEGER NOT NULL REFERENCES studies(pk),
    password_hash TEXT NOT NULL,
    deidentified INTEGER NOT NULL DEFAULT 0,
    notify_owner INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    locked_until TEXT,
    views INTEGER NOT NULL DEFAULT 0,
    first_opened_at TEXT
);
CREATE INDEX shares_by_account ON shares (account_id, study_pk, created_at);

-- What a recipient's right password opens: a session bound to one share.
CREATE TABLE share_sessions (
    token_hash BLOB PRIMARY KEY,
    share_id TEXT NOT NULL REFERENCES shares(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE downloads (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    member_id TEXT NOT NULL,
    study_pk INTEGER NOT NULL REFERENCES studies(pk),
    code_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    wrong_codes INTEGER NOT NULL DEFAULT 0,
    invalidated_at TEXT,
    used_at TEXT
);
CREATE INDEX downloads_by_account ON downloads (account_id, created_at);

-- Every transfer to someone else (T/GDNS 007 §7.5c): sender, receiver, data category,
-- result and time.
CREATE TABLE transfer_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    account_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    category TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX transfer_log_by_account ON transfer_log (account_id, id);

-- What the account holder sees of who accessed their members' data.
CREATE TABLE access_log (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    client_ip TEXT
);
CREATE INDEX access_log_by_account ON access_log (account_id, id);
