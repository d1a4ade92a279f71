-- Patients: accounts (by phone), one-time codes, sessions, consent events, members, reports,
-- and the opaque exam ids patients see. Personal values are sealed; lookups go through keyed
-- blind-index tokens. Times are RFC 3339 UTC text (sortable).

ALTER TABLE studies ADD COLUMN exam_id TEXT;
UPDATE studies SET exam_id = lower(hex(randomblob(16))) WHERE exam_id IS NULL;
CREATE UNIQUE INDEX studies_by_exam_id ON studies (exam_id);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    phone_token BLOB NOT NULL UNIQUE,
    phone BLOB NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE otp_codes (
    id INTEGER PRIMARY KEY,
    phone_token BLOB NOT NULL,
    purpose TEXT NOT NULL,
    code_hash BLOB NOT NULL,
    sent_at TEXT NOT NULL,
    wrong_attempts INTEGER NOT NULL DEFAULT 0,
    used_at TEXT
);
CREATE INDEX otp_codes_by_phone ON otp_codes (phone_token, purpose, sent_at);

-- Events counted by rate limits: the bucket is a keyed hash of what is limited (a client
-- address, an account), never the value itself.
CREATE TABLE rate_events (
    bucket BLOB NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX rate_events_by_bucket ON rate_events (bucket, at);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    csrf_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    step_up_at TEXT,
    revoked_at TEXT
) WITHOUT ROWID;
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE consent_events (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    granted INTEGER NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX consent_events_by_account ON consent_events (account_id, id);

CREATE TABLE members (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    relation TEXT NOT NULL,
    name BLOB NOT NULL,
    id_number BLOB NOT NULL,
    id_token BLOB NOT NULL,
    created_at TEXT NOT NULL,
    matched_at TEXT,
    matched_study_pk INTEGER REFERENCES studies(pk)
);
CREATE INDEX members_by_account ON members (account_id);
CREATE UNIQUE INDEX members_once_per_account ON members (account_id, id_token);
CREATE UNIQUE INDEX members_one_self_per_account ON members (account_id) WHERE relation = 'self';
CREATE UNIQUE INDEX members_self_of_one_account ON members (id_token) WHERE relation = 'self';

-- Report text a hospital attached through the JSON endpoint (sealed); SR and PDF reports
-- are read from the stored instances.
CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    study_pk INTEGER NOT NULL REFERENCES studies(pk),
    body BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX reports_by_study ON reports (study_pk);
