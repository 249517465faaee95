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
