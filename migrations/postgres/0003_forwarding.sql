-- Forwarding: every state change in `events` is delivered to each destination (a
-- FORWARD_URL, or NATS JetStream). `events` is the outbox, written in the same
-- transaction as the change; these tables record how far each destination has been fed
-- and each delivery's progress.

-- Events after `last_event_id` have no delivery rows for this destination yet.
CREATE TABLE forward_cursors (
    destination   TEXT    PRIMARY KEY,
    last_event_id BIGINT  NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE deliveries (
    destination       TEXT    NOT NULL,
    event_id          BIGINT  NOT NULL REFERENCES events (id),
    -- What the event is about (a message, a consent, ...): deliveries with the same key go
    -- out one at a time, in event order.
    ordering_key      TEXT    NOT NULL,
    state             TEXT    NOT NULL DEFAULT 'pending',   -- pending, delivered, dead
    attempts          BIGINT  NOT NULL DEFAULT 0,
    -- While an attempt runs, the end of its lease.
    next_attempt_at   TIMESTAMPTZ NOT NULL,
    -- Retries stop (dead letter) once the retry window from here has passed.
    window_started_at TIMESTAMPTZ NOT NULL,
    last_status       BIGINT,
    last_error        TEXT,
    delivered_at      TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (destination, event_id)
);
CREATE INDEX deliveries_pending_order ON deliveries (destination, ordering_key, event_id)
    WHERE state = 'pending';
CREATE INDEX deliveries_pending_due ON deliveries (destination, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX deliveries_state ON deliveries (state, event_id);
