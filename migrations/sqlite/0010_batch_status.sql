-- BATCH_STATUS_UPDATE: the Conversation Batch API's status callback. Every report in
-- batch_status_history; the newest per batch in batch_states.
CREATE TABLE batch_status_history (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id            TEXT    NOT NULL,
    app_id              TEXT,
    status              TEXT    NOT NULL,
    total_messages      INTEGER,
    successful_messages INTEGER,
    failed_messages     INTEGER,
    processing_time_ms  INTEGER,
    event_at            TEXT    NOT NULL,
    callback_id         INTEGER NOT NULL UNIQUE REFERENCES callbacks (id),
    recorded_at         TEXT    NOT NULL
);
CREATE INDEX batch_status_history_batch ON batch_status_history (batch_id, event_at);
CREATE TABLE batch_states (
    batch_id            TEXT    PRIMARY KEY,
    app_id              TEXT,
    status              TEXT    NOT NULL,
    total_messages      INTEGER,
    successful_messages INTEGER,
    failed_messages     INTEGER,
    processing_time_ms  INTEGER,
    event_at            TEXT    NOT NULL,
    callback_id         INTEGER NOT NULL REFERENCES callbacks (id),
    updated_at          TEXT    NOT NULL
);
