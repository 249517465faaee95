-- BATCH_STATUS_UPDATE: the Conversation Batch API's status callback. Every report in
-- batch_status_history; the newest per batch in batch_states.
CREATE TABLE batch_status_history (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id            TEXT        NOT NULL,
    app_id              TEXT,
    status              TEXT        NOT NULL,
    total_messages      BIGINT,
    successful_messages BIGINT,
    failed_messages     BIGINT,
    processing_time_ms  BIGINT,
    event_at            TIMESTAMPTZ NOT NULL,
    callback_id         BIGINT      NOT NULL UNIQUE REFERENCES callbacks (id),
    recorded_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX batch_status_history_batch ON batch_status_history (batch_id, event_at);
CREATE TABLE batch_states (
    batch_id            TEXT        PRIMARY KEY,
    app_id              TEXT,
    status              TEXT        NOT NULL,
    total_messages      BIGINT,
    successful_messages BIGINT,
    failed_messages     BIGINT,
    processing_time_ms  BIGINT,
    event_at            TIMESTAMPTZ NOT NULL,
    callback_id         BIGINT      NOT NULL REFERENCES callbacks (id),
    updated_at          TIMESTAMPTZ NOT NULL
);
