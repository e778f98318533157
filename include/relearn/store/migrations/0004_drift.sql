-- Drift monitoring: one report per check, drift-triggered runs, and the A/B tests they request.

-- Feature drift retrains with its own source; performance decay keeps 'decay_triggered'.
ALTER TABLE model_retraining_runs DROP CONSTRAINT model_retraining_runs_source_check;
ALTER TABLE model_retraining_runs ADD CONSTRAINT model_retraining_runs_source_check
    CHECK (source IN ('auto_daily', 'manual', 'decay_triggered', 'drift_triggered'));

CREATE TABLE drift_reports (
    id                UUID PRIMARY KEY,
    model_name        TEXT NOT NULL,
    model_version     TEXT,
    -- The end of the checked window ("now" of the check); the window is [window_start, checked_at).
    checked_at        TIMESTAMPTZ NOT NULL,
    window_start      TIMESTAMPTZ NOT NULL,
    rows              INTEGER NOT NULL,
    labelled_rows     INTEGER NOT NULL,
    score             DOUBLE PRECISION,
    threshold         DOUBLE PRECISION NOT NULL,
    verdict           TEXT NOT NULL
                      CHECK (verdict IN ('stable', 'drifted', 'decayed', 'insufficient_data')),
    drifted_features  JSONB NOT NULL DEFAULT '[]'::jsonb,
    -- Per-feature statistics, prediction drift and the performance check, as computed.
    features          JSONB NOT NULL,
    prediction        JSONB,
    performance       JSONB,
    action            TEXT NOT NULL CHECK (action IN ('none', 'retrain', 'cooldown', 'dry_run')),
    action_reason     TEXT,
    report_uri        TEXT,
    retraining_run_id UUID REFERENCES model_retraining_runs (id),
    -- The Airflow dag_run_id or a CLI-made key: a retried check finds its report again.
    run_key           TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (model_name, run_key)
);
CREATE INDEX drift_reports_model_time ON drift_reports (model_name, checked_at DESC);

-- A/B tests. A drift-triggered challenger leaves a 'pending' test at its first traffic
-- share; the A/B promotion workflow starts, expands, promotes or rolls it back.
CREATE TABLE ab_tests (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    model_name         TEXT NOT NULL,
    champion_version   TEXT,
    challenger_version TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending' CHECK (
                           status IN ('pending', 'running', 'paused', 'promoted',
                                      'rolled_back', 'aborted')
                       ),
    traffic_percent    INTEGER NOT NULL DEFAULT 0 CHECK (traffic_percent BETWEEN 0 AND 100),
    stages             JSONB NOT NULL,
    retraining_run_id  UUID REFERENCES model_retraining_runs (id),
    reason             TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at         TIMESTAMPTZ,
    ended_at           TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (model_name, challenger_version)
);
-- At most one test per model is live at a time.
CREATE UNIQUE INDEX ab_tests_one_live ON ab_tests (model_name)
    WHERE status IN ('running', 'paused');
