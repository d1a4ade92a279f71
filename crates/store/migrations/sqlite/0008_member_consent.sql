-- An adult held by another account (issue 13 item 14) is seen only with their own yes: a code
-- sent to the phone on the hospital's record for them, or an approval from their own account.
-- Members added before this migration have no consent: their exams close until it is given.
ALTER TABLE members ADD COLUMN consent_requested_at TEXT;
ALTER TABLE members ADD COLUMN consented_at TEXT;
-- How the yes was given: 'code' (sent to the record's phone) or 'account' (the adult's own).
ALTER TABLE members ADD COLUMN consent_via TEXT;
ALTER TABLE members ADD COLUMN consent_ended_at TEXT;
-- The adult's own account finds who holds them by their resident ID token.
CREATE INDEX members_by_id_token ON members (id_token);
