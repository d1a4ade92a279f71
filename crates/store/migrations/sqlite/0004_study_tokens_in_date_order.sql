-- Blind-index tokens carry their study's organization, date and time in the key, so that a
-- search by patient ID or name walks the matches newest first and stops at the page it
-- needs, instead of reading every matching study to sort them (a common family name
-- matches thousands of studies). Missing dates and times are kept as '' (a WITHOUT ROWID
-- key cannot hold NULL), which sorts where NULL does: last, newest first.
CREATE TABLE study_tokens_ordered (
    kind INTEGER NOT NULL,
    token BLOB NOT NULL,
    org_id INTEGER NOT NULL,
    study_date TEXT NOT NULL,
    study_time TEXT NOT NULL,
    study_pk INTEGER NOT NULL REFERENCES studies(pk),
    PRIMARY KEY (kind, token, org_id, study_date, study_time, study_pk)
) WITHOUT ROWID;

INSERT INTO study_tokens_ordered (kind, token, org_id, study_date, study_time, study_pk)
    SELECT t.kind, t.token, s.org_id, COALESCE(s.study_date, ''), COALESCE(s.study_time, ''), t.study_pk
    FROM study_tokens t JOIN studies s ON s.pk = t.study_pk;

DROP TABLE study_tokens;
ALTER TABLE study_tokens_ordered RENAME TO study_tokens;
