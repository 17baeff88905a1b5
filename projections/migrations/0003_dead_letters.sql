-- Entries of the log the projections could not apply (an event they reject, a document that
-- does not decode): kept whole for an operator, in the transaction that moves the checkpoint
-- past them, so the projector goes on with every other aggregate.
CREATE TABLE dead_letters (
    stream_ms bigint NOT NULL,
    stream_seq bigint NOT NULL,
    event_id text,
    event_type text,
    aggregate_id text,
    -- The event document exactly as stored in the log: bytes, as it may be what PostgreSQL
    -- refused (a NUL in text, say).
    document bytea NOT NULL,
    error text NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_ms, stream_seq)
);
