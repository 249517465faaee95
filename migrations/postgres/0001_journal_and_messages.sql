-- One row per accepted callback: the journal, and the source of truth.
CREATE TABLE callbacks (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at         TIMESTAMPTZ NOT NULL,
    api                 TEXT        NOT NULL,      -- 'conversation' or 'sms'
    trigger             TEXT        NOT NULL,      -- e.g. MESSAGE_DELIVERY, recipient_delivery_report_sms, UNKNOWN
    dedupe_key          TEXT        NOT NULL UNIQUE,
    app_id              TEXT,
    project_id          TEXT,
    message_id          TEXT,
    body                TEXT        NOT NULL,      -- the raw body, byte-exact
    nonce               TEXT        NOT NULL,
    signature_timestamp BIGINT      NOT NULL,
    processed_at        TIMESTAMPTZ,               -- NULL until its effects are committed
    attempts            BIGINT      NOT NULL DEFAULT 0,
    last_error          TEXT,
    next_attempt_at     TIMESTAMPTZ NOT NULL,
    lease_owner         TEXT,                      -- the replica processing it, while it does
    lease_until         TIMESTAMPTZ                -- after this, another replica may take it over
);

CREATE INDEX callbacks_pending ON callbacks (id) WHERE processed_at IS NULL;
CREATE INDEX callbacks_message_id ON callbacks (message_id) WHERE message_id IS NOT NULL;

-- One row per Conversation message, outbound (from delivery reports) or inbound.
CREATE TABLE messages (
    message_id         TEXT PRIMARY KEY,
    direction          TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    status             TEXT,                       -- current status by the status rules; NULL for inbound
    status_at          TIMESTAMPTZ,                -- event time of that status (inbound: of the message)
    status_accepted_at TIMESTAMPTZ,                -- when Sinch accepted that report
    channel            TEXT,
    identity           TEXT,
    conversation_id    TEXT,
    contact_id         TEXT,
    reason_code        TEXT,
    reason_description TEXT,
    text               TEXT,                       -- inbound text messages
    content            TEXT,                       -- inbound: the contact_message object as JSON
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);

-- Every delivery report received, including late and unknown ones.
CREATE TABLE message_status_history (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id         TEXT        NOT NULL,
    status             TEXT        NOT NULL,
    status_at          TIMESTAMPTZ NOT NULL,
    accepted_at        TIMESTAMPTZ,
    channel            TEXT,
    reason_code        TEXT,
    reason_description TEXT,
    callback_id        BIGINT      NOT NULL UNIQUE REFERENCES callbacks (id),
    applied            BOOLEAN     NOT NULL,       -- true if it became the current status when processed
    recorded_at        TIMESTAMPTZ NOT NULL
);

CREATE INDEX message_status_history_message ON message_status_history (message_id, status_at);
