-- DICOM nodes registered to organizations: who may call the DIMSE listener (calling AE,
-- optionally from one host) and where C-MOVE may send (host and port).

CREATE TABLE application_entities (
    ae_title TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id),
    host TEXT,
    port INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX application_entities_by_org ON application_entities (org_id);
