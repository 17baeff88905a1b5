-- One row per batch, with every field of OpenAI's Batch object.
CREATE TABLE batches (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    status text NOT NULL,
    endpoint text NOT NULL,
    input_file_id text NOT NULL,
    completion_window text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint,
    in_progress_at bigint,
    finalizing_at bigint,
    completed_at bigint,
    failed_at bigint,
    expired_at bigint,
    cancelling_at bigint,
    cancelled_at bigint,
    errors jsonb,
    metadata jsonb,
    model text,
    priority text,
    output_file_id text,
    error_file_id text,
    total bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    cached_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    reasoning_tokens bigint NOT NULL DEFAULT 0,
    total_tokens bigint NOT NULL DEFAULT 0,
    -- Position of batch.created in the log: a total order for newest-first listing.
    log_ms bigint NOT NULL,
    log_seq bigint NOT NULL
);

CREATE INDEX batches_by_tenant ON batches (tenant, log_ms DESC, log_seq DESC);
CREATE INDEX batches_by_status ON batches (status) WHERE status IN ('validating', 'in_progress', 'cancelling', 'finalizing');
