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
