-- State for every trigger family, and the outbox of state changes the live stream reads.

ALTER TABLE messages ADD COLUMN submitted_at TEXT;     -- MESSAGE_SUBMIT: handed to the channel

-- Every state change, in commit order: the live stream (and its resumption) reads this.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    callback_id INTEGER NOT NULL REFERENCES callbacks (id),
    type        TEXT    NOT NULL,                        -- message.status, consent, sms.delivery, ...
    payload     TEXT    NOT NULL,                        -- JSON
    created_at  TEXT    NOT NULL
);
CREATE INDEX events_callback ON events (callback_id);

-- EVENT_INBOUND: what contacts did besides messages (composing, comments, payments, ...).
CREATE TABLE contact_events (
    event_id        TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,                       -- composing_event, comment_event, ...
    channel         TEXT,
    identity        TEXT,
    conversation_id TEXT,
    contact_id      TEXT,
    event_at        TEXT NOT NULL,
    payload         TEXT NOT NULL,                       -- the contact_event object as JSON
    callback_id     INTEGER NOT NULL REFERENCES callbacks (id),
    created_at      TEXT NOT NULL
);
CREATE INDEX contact_events_contact ON contact_events (contact_id, event_at);

-- EVENT_DELIVERY: status of events the app sent, by the same rules as messages.
CREATE TABLE app_events (
    event_id           TEXT PRIMARY KEY,
    status             TEXT,
    status_at          TEXT,
    status_accepted_at TEXT,
    channel            TEXT,
    identity           TEXT,
    conversation_id    TEXT,
    contact_id         TEXT,
    reason_code        TEXT,
    reason_description TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE TABLE app_event_status_history (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id           TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    status_at          TEXT    NOT NULL,
    accepted_at        TEXT,
    channel            TEXT,
    reason_code        TEXT,
    reason_description TEXT,
    callback_id        INTEGER NOT NULL UNIQUE REFERENCES callbacks (id),
    applied            INTEGER NOT NULL,
    recorded_at        TEXT    NOT NULL
);
CREATE INDEX app_event_status_history_event ON app_event_status_history (event_id, status_at);

-- OPT_IN / OPT_OUT: may this identity be messaged on this channel?
CREATE TABLE consents (
    channel         TEXT NOT NULL,
    identity        TEXT NOT NULL,
    consented       INTEGER,                  -- latest successful change: 1 opted in, 0 opted out; NULL if none succeeded
    consented_at    TEXT,                     -- event time of that change
    last_kind       TEXT NOT NULL,            -- OPT_IN or OPT_OUT: the latest notification by event time
    last_status     TEXT NOT NULL,            -- SUCCEEDED, FAILED, UNSPECIFIED
    last_request_id TEXT,
    last_error      TEXT,
    last_event_at   TEXT NOT NULL,
    contact_id      TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (channel, identity)
);
CREATE TABLE consent_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT    NOT NULL,
    identity    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    request_id  TEXT,
    contact_id  TEXT,
    error       TEXT,
    event_at    TEXT    NOT NULL,
    callback_id INTEGER NOT NULL UNIQUE REFERENCES callbacks (id),
    recorded_at TEXT    NOT NULL
);
CREATE INDEX consent_history_identity ON consent_history (channel, identity, event_at);

-- CAPABILITY: the latest capability check per identity and channel.
CREATE TABLE capabilities (
    channel              TEXT NOT NULL,
    identity             TEXT NOT NULL,
    status               TEXT NOT NULL,       -- CAPABILITY_FULL, CAPABILITY_PARTIAL, NO_CAPABILITY
    channel_capabilities TEXT,                -- JSON
    reason               TEXT,                -- JSON
    request_id           TEXT,
    contact_id           TEXT,
    checked_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (channel, identity)
);

-- CONTACT_*: contacts kept current; deletion and merging mark, never drop.
CREATE TABLE contacts (
    contact_id       TEXT PRIMARY KEY,
    display_name     TEXT,
    email            TEXT,
    external_id      TEXT,
    metadata         TEXT,
    language         TEXT,
    channel_priority TEXT,                    -- JSON
    merged_into      TEXT,                    -- set when merged into another contact
    deleted_at       TEXT,
    last_event_at    TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE TABLE contact_identities (
    channel    TEXT NOT NULL,
    identity   TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, identity)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);

-- CONTACT_IDENTITIES_DUPLICATION: contacts Sinch found sharing an identity.
CREATE TABLE identity_duplications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT,
    contact_ids TEXT    NOT NULL,             -- JSON array
    callback_id INTEGER NOT NULL REFERENCES callbacks (id),
    reported_at TEXT    NOT NULL,
    UNIQUE (callback_id, contact_ids)
);

-- CONVERSATION_*: conversations kept current.
CREATE TABLE conversations (
    conversation_id TEXT PRIMARY KEY,
    app_id          TEXT,
    contact_id      TEXT,
    active          INTEGER,
    active_channel  TEXT,
    metadata        TEXT,
    started_at      TEXT,
    stopped_at      TEXT,
    deleted_at      TEXT,
    last_event_at   TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- SMS recipient delivery reports: per (batch, recipient), final states never replaced.
CREATE TABLE sms_deliveries (
    batch_id         TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    status           TEXT,
    code             INTEGER,
    status_at        TEXT,
    client_reference TEXT,
    operator         TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (batch_id, recipient)
);
CREATE TABLE sms_delivery_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id    TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    code        INTEGER,
    status_at   TEXT    NOT NULL,
    callback_id INTEGER NOT NULL UNIQUE REFERENCES callbacks (id),
    applied     INTEGER NOT NULL,
    recorded_at TEXT    NOT NULL
);
CREATE INDEX sms_delivery_history_recipient ON sms_delivery_history (batch_id, recipient);

-- SMS batch delivery reports: the latest summary per batch.
CREATE TABLE sms_batches (
    batch_id            TEXT PRIMARY KEY,
    kind                TEXT NOT NULL,        -- delivery_report_sms or delivery_report_mms
    total_message_count INTEGER,
    statuses            TEXT NOT NULL,        -- JSON: [{code, count, recipients, status}]
    client_reference    TEXT,
    callback_id         INTEGER NOT NULL REFERENCES callbacks (id),
    updated_at          TEXT NOT NULL
);

-- SMS inbound messages (mo_text, mo_binary, mo_media).
CREATE TABLE sms_inbound (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    from_number      TEXT,
    to_number        TEXT,
    text             TEXT,
    payload          TEXT NOT NULL,          -- the whole callback body
    received_at      TEXT,
    sent_at          TEXT,
    operator_id      TEXT,
    client_reference TEXT,
    callback_id      INTEGER NOT NULL REFERENCES callbacks (id),
    created_at       TEXT NOT NULL
);
CREATE INDEX callbacks_trigger ON callbacks (trigger, id);
CREATE INDEX messages_created ON messages (created_at, message_id);
