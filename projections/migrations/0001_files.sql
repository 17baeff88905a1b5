-- Where each projector has got to in the global stream: the entry id as two bigints,
-- compared as a tuple. Updated in the same transaction as the rows an event changes.
CREATE TABLE checkpoints (
    projection text PRIMARY KEY,
    stream_ms bigint NOT NULL,
    stream_seq bigint NOT NULL
);

-- One row per file ever uploaded. Deleted and expired files stay as tombstones (state
-- other than 'active') so that a list cursor pointing at one still pages on correctly.
CREATE TABLE files (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    filename text NOT NULL,
    purpose text NOT NULL,
    bytes bigint NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint,
    storage_key text NOT NULL,
    line_count bigint NOT NULL,
    state text NOT NULL DEFAULT 'active',
    ended_at bigint,
    -- Position of the upload in the log: a total order for newest-first listing.
    log_ms bigint NOT NULL,
    log_seq bigint NOT NULL
);

CREATE INDEX files_by_tenant ON files (tenant, log_ms DESC, log_seq DESC);
CREATE INDEX files_by_tenant_purpose ON files (tenant, purpose, log_ms DESC, log_seq DESC);
CREATE INDEX files_by_expiry ON files (expires_at) WHERE state = 'active' AND expires_at IS NOT NULL;
