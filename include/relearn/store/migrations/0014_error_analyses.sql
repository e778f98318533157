-- Error analyses: where the champion is wrong, per retraining run (its holdout, with the
-- candidate compared on the same rows) and per day (with the live challenger, if any).
CREATE TABLE error_analyses (
    id                   BIGSERIAL PRIMARY KEY,
    model_name           TEXT NOT NULL,
    scope                TEXT NOT NULL CHECK (scope IN ('retraining_run', 'daily')),
    -- The retraining run id, or the Airflow dag_run_id / CLI key of a daily analysis: a
    -- retried task rewrites its own row instead of adding one.
    analysis_key         TEXT NOT NULL,
    retraining_run_id    UUID REFERENCES model_retraining_runs (id),
    champion_version     TEXT,
    compared_role        TEXT CHECK (compared_role IN ('candidate', 'challenger')),
    compared_version     TEXT,
    window_start         TIMESTAMPTZ,
    window_end           TIMESTAMPTZ,
    status               TEXT NOT NULL CHECK (status IN ('analysed', 'insufficient_data')),
    rows                 INTEGER NOT NULL,
    errors               INTEGER NOT NULL,
    error_rate           DOUBLE PRECISION,
    ece                  DOUBLE PRECISION,
    significant_segments INTEGER NOT NULL,
    -- Daily: rows of the window left out as unsound (bad confidence, labels, documents);
    -- NULL for a retraining run (its quarantine is in the run's validation report).
    excluded_rows        INTEGER,
    -- Segments, confusion pairs, reliability curve and suggestions (relearn.analysis.report).
    findings             JSONB NOT NULL,
    artifact_uri         TEXT,
    analysed_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (model_name, scope, analysis_key)
);
CREATE INDEX error_analyses_latest ON error_analyses (model_name, analysed_at DESC);
