-- A DICOM node may be bound to its TLS client certificate (the SHA-256 of its DER, hex): it is
-- then accepted only over DIMSE TLS with that certificate.
ALTER TABLE application_entities ADD COLUMN certificate_sha256 TEXT;
