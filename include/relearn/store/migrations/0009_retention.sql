-- Retention: each model keeps `retention.days` of its prediction log. Older rows are exported
-- to Parquet in the MLflow artifact store, one file per model, UTC day and part, recorded here
-- with their row count and digests; only rows whose content still matches the verified
-- archive are then deleted, in small batches by primary key.

CREATE TABLE prediction_archives (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    model_name    TEXT NOT NULL,
    day           DATE NOT NULL,                -- the UTC day of the rows' predicted_at
    -- 0 for the day's first archive; rows that reach (or change in) an archived day later
    -- go to part 1, 2, ...
    part          INTEGER NOT NULL CHECK (part >= 0),
    row_count     BIGINT NOT NULL,
    -- sha256 over the rows' md5 digests (in file order); each row's digest is in the file.
    digest        TEXT NOT NULL,
    file_sha256   TEXT NOT NULL,
    artifact_uri  TEXT NOT NULL,
    mlflow_run_id TEXT NOT NULL,
    -- archived: the file is verified, its rows may still be in the log; deleted: they are gone.
    status        TEXT NOT NULL DEFAULT 'archived' CHECK (status IN ('archived', 'deleted')),
    rows_deleted  BIGINT NOT NULL DEFAULT 0,
    -- The DAG run (or CLI call) that made the archive.
    trigger_key       TEXT NOT NULL,
    archived_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ,
    UNIQUE (model_name, day, part)
);

-- Deleting a prediction cascades to its feedback, and the archive reads a row's feedback with
-- it: both use the unique index on feedback (prediction_id) of 0010 (first rating wins).
-- The other tables' expiry reads them by age.
CREATE INDEX IF NOT EXISTS health_checks_model_time ON health_checks (model_name, checked_at);
CREATE INDEX IF NOT EXISTS prediction_quarantine_time ON prediction_quarantine (quarantined_at);
