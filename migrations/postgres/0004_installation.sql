-- A random id for this database, made once: forwarded events are identified as
-- evt_<installation>_<event id>, so a new or restored database never repeats an id an
-- application has already seen (and would drop as a duplicate).
CREATE TABLE installation (
    id TEXT NOT NULL
);
INSERT INTO installation (id)
    SELECT substr(md5(random()::text || clock_timestamp()::text), 1, 12);
