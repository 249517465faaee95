-- Times are UTC text in one fixed-width form, 2025-03-04T12:00:01.250000Z, so that they
-- sort and compare correctly as strings.

-- One row per accepted callback: the journal, and the source of truth.
CREATE TABLE callbacks (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at         TEXT    NOT NULL,
    api                 TEXT    NOT NULL,          -- 'conversation' or 'sms'
    trigger             TEXT    NOT NULL,          -- e.g. MESSAGE_DELIVERY, recipient_delivery_report_sms, UNKNOWN
    dedupe_key          TEXT    NOT NULL UNIQUE,
    app_id              TEXT,
    project_id          TEXT,
    message_id          TEXT,
    body                TEXT    NOT NULL,          -- the raw body, byte-exact
    nonce               TEXT    NOT NULL,
    signature_timestamp INTEGER NOT NULL,
    processed_at        TEXT,                      -- NULL until its effects are committed
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    next_attempt_at     TEXT    NOT NULL
);

CREATE INDEX callbacks_pending ON callbacks (id) WHERE processed_at IS NULL;
CREATE INDEX callbacks_message_id ON callbacks (message_id) WHERE message_id IS NOT NULL;

-- One row per Conversation message, outbound (from delivery reports) or inbound.
CREATE TABLE messages (
    message_id         TEXT PRIMARY KEY,
    direction          TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    status             TEXT,                       -- current status by the status rules; NULL for inbound
    status_at          TEXT,                       -- event time of that status (inbound: of the message)
    status_accepted_at TEXT,                       -- when Sinch accepted that report
    channel            TEXT,
    identity           TEXT,
    conversation_id    TEXT,
    contact_id         TEXT,
    reason_code        TEXT,
    reason_description TEXT,
    text               TEXT,                       -- inbound text messages
    content            TEXT,                       -- inbound: the contact_message object as JSON
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- Every delivery report received, including late and unknown ones.
CREATE TABLE message_status_history (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id         TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    status_at          TEXT    NOT NULL,
    accepted_at        TEXT,
    channel            TEXT,
    reason_code        TEXT,
    reason_description TEXT,
    callback_id        INTEGER NOT NULL UNIQUE REFERENCES callbacks (id),
    applied            INTEGER NOT NULL,          -- 1 if it became the current status when processed
    recorded_at        TEXT    NOT NULL
);

CREATE INDEX message_status_history_message ON message_status_history (message_id, status_at);
