-- Issue 20: the answers given to callbacks Sinch waits on (ICE, ACE, PIE, verification
-- requests), by the callback's dedupe key, so a retry gets the same answer from here without
-- asking the application again.
CREATE TABLE answers (
    dedupe_key  TEXT        PRIMARY KEY,
    callback_id BIGINT,
    trigger     TEXT        NOT NULL,
    source      TEXT        NOT NULL,
    body        TEXT        NOT NULL,
    origin      TEXT        NOT NULL,
    detail      TEXT        NOT NULL,
    latency_ms  BIGINT      NOT NULL,
    answered_at TIMESTAMPTZ NOT NULL
);
