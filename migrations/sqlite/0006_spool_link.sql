-- The identity of the spool (`<database>.spool`) that belongs to this database: the two
-- files hold one journal between them, so a missing spool, or one of another database, is
-- refused at start instead of silently losing what only the spool held.
CREATE TABLE spool_link (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    spool_id  TEXT NOT NULL,
    linked_at TEXT NOT NULL
);
