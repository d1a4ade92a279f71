-- A second copy of every signed audit head (the first is the heads file beside the database):
-- deleting the file no longer lets the archive sign a fresh head over a rewritten chain.
CREATE TABLE audit_heads (
    tree_size INTEGER PRIMARY KEY,
    head TEXT NOT NULL
);
