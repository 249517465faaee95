-- Voice calls, Verifications and Numbers resources: one row per aggregate. `state` holds the
-- whole aggregate as the domain rules decide it (`domain::call::Call`, ...: JSON, with its
-- timeline or history), because each rule decides against all of it and it must read back
-- exactly; the other columns copy what lists filter and sort on. `state` is NULL only
-- inside the transaction that creates the row (the row is inserted first so that PostgreSQL
-- can lock it while deciding).
CREATE TABLE calls (
    call_id        TEXT    PRIMARY KEY,
    direction      TEXT,
    from_number    TEXT,
    to_number      TEXT,
    progress       TEXT,
    result         TEXT,
    reason         TEXT,
    duration       INTEGER,
    cost           TEXT,
    first_event_at TEXT,
    last_event_at  TEXT,
    state          TEXT,
    callback_id    INTEGER NOT NULL REFERENCES callbacks (id),
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
);
CREATE INDEX calls_created ON calls (created_at, call_id);
CREATE TABLE verifications (
    id            TEXT    PRIMARY KEY,
    method        TEXT,
    identity      TEXT,
    reference     TEXT,
    status        TEXT,
    result_status TEXT,
    result_reason TEXT,
    result_source TEXT,
    sms_result    TEXT,
    state         TEXT,
    callback_id   INTEGER NOT NULL REFERENCES callbacks (id),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
CREATE INDEX verifications_created ON verifications (created_at, id);
CREATE INDEX verifications_identity ON verifications (identity);
CREATE TABLE numbers (
    resource_id   TEXT    PRIMARY KEY,
    resource_type TEXT,
    project_id    TEXT,
    event_id      TEXT,
    event_type    TEXT,
    status        TEXT,
    failure_code  TEXT,
    event_at      TEXT,
    state         TEXT,
    callback_id   INTEGER NOT NULL REFERENCES callbacks (id),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
CREATE INDEX numbers_created ON numbers (created_at, resource_id);
