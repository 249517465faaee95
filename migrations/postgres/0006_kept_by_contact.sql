-- OPT_IN, OPT_OUT and CAPABILITY notifications that name a contact but no identity (Sinch's models mark
-- `identity` optional): the consent is kept by (channel, contact), with the columns of
-- `consents`, `consent_history` and `capabilities`, so that one set of statements serves
-- both.
CREATE TABLE contact_consents (
    channel         TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    identity        TEXT,                     -- always NULL here; kept so the columns match
    consented       BOOLEAN,
    consented_at    TIMESTAMPTZ,
    last_kind       TEXT NOT NULL,
    last_status     TEXT NOT NULL,
    last_request_id TEXT,
    last_error      TEXT,
    last_event_at   TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, contact_id)
);
CREATE TABLE contact_consent_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel     TEXT    NOT NULL,
    identity    TEXT,
    kind        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    request_id  TEXT,
    contact_id  TEXT    NOT NULL,
    error       TEXT,
    event_at    TIMESTAMPTZ NOT NULL,
    callback_id BIGINT  NOT NULL UNIQUE REFERENCES callbacks (id),
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX contact_consent_history_contact ON contact_consent_history (contact_id, channel, event_at);
CREATE TABLE contact_capabilities (
    channel              TEXT NOT NULL,
    contact_id           TEXT NOT NULL,
    identity             TEXT,                -- always NULL here; kept so the columns match
    status               TEXT NOT NULL,
    channel_capabilities TEXT,
    reason               TEXT,
    request_id           TEXT,
    checked_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, contact_id)
);
