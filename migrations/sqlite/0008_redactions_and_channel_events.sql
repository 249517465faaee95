-- MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION: Smart Conversations' redacted copy of an
-- inbound message replaces its stored text and content; each redaction is recorded.
ALTER TABLE messages ADD COLUMN redacted_at TEXT;
CREATE TABLE message_redactions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  TEXT    NOT NULL,
    callback_id INTEGER NOT NULL UNIQUE REFERENCES callbacks (id),
    redacted_at TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL
);
CREATE INDEX message_redactions_message ON message_redactions (message_id);

-- CHANNEL_EVENT: news about a channel itself (WhatsApp quality rating, number status): every
-- event in channel_events, the newest of each type per app and channel in channel_states.
CREATE TABLE channel_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id          TEXT    NOT NULL,         -- '' when the callback names none
    channel         TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    additional_data TEXT,                     -- JSON
    event_at        TEXT NOT NULL,
    callback_id     INTEGER NOT NULL UNIQUE REFERENCES callbacks (id),
    recorded_at     TEXT NOT NULL
);
CREATE INDEX channel_events_channel ON channel_events (channel, event_at);
CREATE TABLE channel_states (
    app_id          TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    additional_data TEXT,
    event_at        TEXT NOT NULL,
    callback_id     INTEGER NOT NULL REFERENCES callbacks (id),
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (app_id, channel, event_type)
);
