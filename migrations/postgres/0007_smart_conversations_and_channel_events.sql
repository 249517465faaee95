-- MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION: Smart Conversations' redacted copy of an
-- inbound message replaces its stored text and content; each redaction is recorded.
ALTER TABLE messages ADD COLUMN redacted_at TIMESTAMPTZ;
CREATE TABLE message_redactions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  TEXT        NOT NULL,
    callback_id BIGINT      NOT NULL UNIQUE REFERENCES callbacks (id),
    redacted_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX message_redactions_message ON message_redactions (message_id);

-- CHANNEL_EVENT: news about a channel itself (WhatsApp quality rating, number status): every
-- event in channel_events, the newest of each type per app and channel in channel_states.
CREATE TABLE channel_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id          TEXT    NOT NULL,         -- '' when the callback names none
    channel         TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    additional_data TEXT,                     -- JSON
    event_at        TIMESTAMPTZ NOT NULL,
    callback_id     BIGINT NOT NULL UNIQUE REFERENCES callbacks (id),
    recorded_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX channel_events_channel ON channel_events (channel, event_at);
CREATE TABLE channel_states (
    app_id          TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    additional_data TEXT,
    event_at        TIMESTAMPTZ NOT NULL,
    callback_id     BIGINT NOT NULL REFERENCES callbacks (id),
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (app_id, channel, event_type)
);

-- SMART_CONVERSATION: Smart Conversations' analyses (sentiment, intent, PII, ...), kept with
-- their message or conversation. RECORD_NOTIFICATION: what became of a record of a message or
-- event (`entity_id`).
CREATE TABLE message_analyses (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      TEXT,
    conversation_id TEXT,
    contact_id      TEXT,
    channel         TEXT,
    identity        TEXT,
    results         TEXT,                     -- analysis_results, JSON
    event_at        TIMESTAMPTZ NOT NULL,
    callback_id     BIGINT NOT NULL UNIQUE REFERENCES callbacks (id),
    recorded_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX message_analyses_message ON message_analyses (message_id);
CREATE TABLE record_notifications (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity_id     TEXT    NOT NULL,
    record_status TEXT,
    event_at      TIMESTAMPTZ NOT NULL,
    callback_id   BIGINT NOT NULL UNIQUE REFERENCES callbacks (id),
    recorded_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX record_notifications_entity ON record_notifications (entity_id);
