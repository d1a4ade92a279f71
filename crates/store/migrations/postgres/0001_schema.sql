-- The whole index on PostgreSQL, as the SQLite migrations leave it (0001-0008), with the
-- same columns and meanings, so the same SQL runs on both: times are RFC 3339 UTC text
-- (sortable), personal values sealed (BYTEA) and found through blind-index tokens, integers
-- BIGINT. Tables whose order of insertion the portal shows carry `rowid` (what SQLite gives
-- every table). The audit chain is integrated by one sequencer: effects commit with their
-- entries queued in `audit_queue`, in the same transaction.

CREATE TABLE organizations (
    id BIGSERIAL PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    cloud_film_enabled BOOLEAN NOT NULL,
    download_enabled BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations(id),
    secret_hash BYTEA NOT NULL,
    allow_cidrs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE application_entities (
    ae_title TEXT PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations(id),
    host TEXT,
    port BIGINT,
    created_at TEXT NOT NULL
);
CREATE INDEX application_entities_by_org ON application_entities (org_id);

CREATE TABLE studies (
    pk BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations(id),
    study_uid TEXT NOT NULL,
    study_date TEXT,
    study_time TEXT,
    accession_number TEXT,
    study_description TEXT,
    study_id TEXT,
    institution_name TEXT,
    patient_sex TEXT,
    patient_name BYTEA,
    patient_id BYTEA,
    patient_birth_date BYTEA,
    other_patient_ids BYTEA,
    patient_phones BYTEA,
    referring_physician BYTEA,
    modalities TEXT NOT NULL DEFAULT '',
    num_series BIGINT NOT NULL DEFAULT 0,
    num_instances BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    exam_id TEXT,
    UNIQUE (org_id, study_uid)
);
CREATE INDEX studies_by_date ON studies (org_id, study_date, study_time);
CREATE INDEX studies_by_accession ON studies (org_id, accession_number);
CREATE UNIQUE INDEX studies_by_exam_id ON studies (exam_id);

-- Blind-index tokens keyed with their study's organization, date and time, so that a search
-- walks the matches newest first and stops at its page.
CREATE TABLE study_tokens (
    kind BIGINT NOT NULL,
    token BYTEA NOT NULL,
    org_id BIGINT NOT NULL,
    study_date TEXT NOT NULL,
    study_time TEXT NOT NULL,
    study_pk BIGINT NOT NULL REFERENCES studies(pk),
    PRIMARY KEY (kind, token, org_id, study_date, study_time, study_pk)
);

CREATE TABLE series (
    pk BIGSERIAL PRIMARY KEY,
    study_pk BIGINT NOT NULL REFERENCES studies(pk),
    series_uid TEXT NOT NULL,
    modality TEXT,
    series_number BIGINT,
    series_description TEXT,
    body_part TEXT,
    series_date TEXT,
    series_time TEXT,
    num_instances BIGINT NOT NULL DEFAULT 0,
    UNIQUE (study_pk, series_uid)
);
CREATE INDEX series_by_uid ON series (series_uid);

CREATE TABLE instances (
    pk BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations(id),
    study_pk BIGINT NOT NULL REFERENCES studies(pk),
    series_pk BIGINT NOT NULL REFERENCES series(pk),
    sop_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    instance_number BIGINT,
    number_of_frames BIGINT NOT NULL,
    rows BIGINT,
    columns BIGINT,
    bits_allocated BIGINT,
    samples_per_pixel BIGINT,
    transfer_syntax TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    blob_id TEXT NOT NULL UNIQUE,
    pixel_layout TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, sop_uid)
);
CREATE INDEX instances_by_series ON instances (series_pk, instance_number);
CREATE INDEX instances_by_study ON instances (study_pk);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    canonical TEXT NOT NULL,
    leaf BYTEA NOT NULL,
    chain BYTEA NOT NULL
);

-- Entries committed with their effects, waiting for the sequencer to give them their place
-- in the chain (in the order it finds them committed).
CREATE TABLE audit_queue (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    event TEXT NOT NULL
);

CREATE TABLE audit_heads (
    tree_size BIGINT PRIMARY KEY,
    head TEXT NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    phone_token BYTEA NOT NULL UNIQUE,
    phone BYTEA NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE otp_codes (
    id BIGSERIAL PRIMARY KEY,
    phone_token BYTEA NOT NULL,
    purpose TEXT NOT NULL,
    code_hash BYTEA NOT NULL,
    sent_at TEXT NOT NULL,
    wrong_attempts BIGINT NOT NULL DEFAULT 0,
    used_at TEXT
);
CREATE INDEX otp_codes_by_phone ON otp_codes (phone_token, purpose, sent_at);

CREATE TABLE rate_events (
    bucket BYTEA NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX rate_events_by_bucket ON rate_events (bucket, at);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    csrf_hash BYTEA NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    step_up_at TEXT,
    revoked_at TEXT
);
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE consent_events (
    id BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX consent_events_by_account ON consent_events (account_id, id);

CREATE TABLE members (
    rowid BIGSERIAL,
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    relation TEXT NOT NULL,
    name BYTEA NOT NULL,
    id_number BYTEA NOT NULL,
    id_token BYTEA NOT NULL,
    created_at TEXT NOT NULL,
    matched_at TEXT,
    matched_study_pk BIGINT REFERENCES studies(pk),
    consent_requested_at TEXT,
    consented_at TEXT,
    consent_via TEXT,
    consent_ended_at TEXT
);
CREATE INDEX members_by_account ON members (account_id);
CREATE UNIQUE INDEX members_once_per_account ON members (account_id, id_token);
CREATE UNIQUE INDEX members_one_self_per_account ON members (account_id) WHERE relation = 'self';
CREATE UNIQUE INDEX members_self_of_one_account ON members (id_token) WHERE relation = 'self';
CREATE INDEX members_by_id_token ON members (id_token);

CREATE TABLE reports (
    id BIGSERIAL PRIMARY KEY,
    study_pk BIGINT NOT NULL REFERENCES studies(pk),
    body BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX reports_by_study ON reports (study_pk);

CREATE TABLE shares (
    rowid BIGSERIAL,
    id TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    member_id TEXT NOT NULL,
    study_pk BIGINT NOT NULL REFERENCES studies(pk),
    password_hash TEXT NOT NULL,
    deidentified BOOLEAN NOT NULL DEFAULT FALSE,
    notify_owner BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    locked_until TEXT,
    views BIGINT NOT NULL DEFAULT 0,
    first_opened_at TEXT
);
CREATE INDEX shares_by_account ON shares (account_id, study_pk, created_at);

CREATE TABLE share_sessions (
    token_hash BYTEA PRIMARY KEY,
    share_id TEXT NOT NULL REFERENCES shares(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE downloads (
    id TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    member_id TEXT NOT NULL,
    study_pk BIGINT NOT NULL REFERENCES studies(pk),
    code_hash BYTEA NOT NULL,
    created_at TEXT NOT NULL,
    wrong_codes BIGINT NOT NULL DEFAULT 0,
    invalidated_at TEXT,
    used_at TEXT
);
CREATE INDEX downloads_by_account ON downloads (account_id, created_at);

CREATE TABLE transfer_log (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    account_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    category TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX transfer_log_by_account ON transfer_log (account_id, id);

CREATE TABLE access_log (
    id BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    client_ip TEXT
);
CREATE INDEX access_log_by_account ON access_log (account_id, id);

CREATE TABLE data_requests (
    rowid BIGSERIAL,
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL,
    detail BYTEA NOT NULL,
    created_at TEXT NOT NULL,
    due_date TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    closed_at TEXT
);
CREATE INDEX data_requests_by_account ON data_requests (account_id, created_at);
