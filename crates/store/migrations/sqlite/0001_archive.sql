-- Organizations, their credentials, the DICOM index and the audit chain.
-- Personal values are sealed (BLOB columns) and found through blind-index tokens.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    cloud_film_enabled INTEGER NOT NULL,
    download_enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id),
    secret_hash BLOB NOT NULL,
    allow_cidrs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE studies (
    pk INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id),
    study_uid TEXT NOT NULL,
    study_date TEXT,
    study_time TEXT,
    accession_number TEXT,
    study_description TEXT,
    study_id TEXT,
    institution_name TEXT,
    patient_sex TEXT,
    patient_name BLOB,
    patient_id BLOB,
    patient_birth_date BLOB,
    other_patient_ids BLOB,
    patient_phones BLOB,
    referring_physician BLOB,
    modalities TEXT NOT NULL DEFAULT '',
    num_series INTEGER NOT NULL DEFAULT 0,
    num_instances INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, study_uid)
);
CREATE INDEX studies_by_date ON studies (org_id, study_date, study_time);
CREATE INDEX studies_by_accession ON studies (org_id, accession_number);

CREATE TABLE study_tokens (
    kind INTEGER NOT NULL,
    token BLOB NOT NULL,
    study_pk INTEGER NOT NULL REFERENCES studies(pk),
    PRIMARY KEY (kind, token, study_pk)
) WITHOUT ROWID;

CREATE TABLE series (
    pk INTEGER PRIMARY KEY,
    study_pk INTEGER NOT NULL REFERENCES studies(pk),
    series_uid TEXT NOT NULL,
    modality TEXT,
    series_number INTEGER,
    series_description TEXT,
    body_part TEXT,
    series_date TEXT,
    series_time TEXT,
    num_instances INTEGER NOT NULL DEFAULT 0,
    UNIQUE (study_pk, series_uid)
);
CREATE INDEX series_by_uid ON series (series_uid);

CREATE TABLE instances (
    pk INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id),
    study_pk INTEGER NOT NULL REFERENCES studies(pk),
    series_pk INTEGER NOT NULL REFERENCES series(pk),
    sop_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    instance_number INTEGER,
    number_of_frames INTEGER NOT NULL,
    rows INTEGER,
    columns INTEGER,
    bits_allocated INTEGER,
    samples_per_pixel INTEGER,
    transfer_syntax TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blob_id TEXT NOT NULL UNIQUE,
    pixel_layout TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, sop_uid)
);
CREATE INDEX instances_by_series ON instances (series_pk, instance_number);
CREATE INDEX instances_by_study ON instances (study_pk);

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    canonical TEXT NOT NULL,
    leaf BLOB NOT NULL,
    chain BLOB NOT NULL
);
