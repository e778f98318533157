-- Auto-reinforcement: what a retraining run was asked to do, the data it used, and the rows
-- that failed validation (kept with their reasons instead of silently dropped).

ALTER TABLE model_retraining_runs
    ADD COLUMN params         JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN dataset_digest TEXT,
    ADD COLUMN mlflow_run_id  TEXT,
    ADD COLUMN request_id     UUID REFERENCES model_retraining_requests (id);

CREATE TABLE prediction_quarantine (
    run_id         UUID NOT NULL REFERENCES model_retraining_runs (id) ON DELETE CASCADE,
    prediction_id  TEXT NOT NULL,
    reasons        JSONB NOT NULL,
    row_data       JSONB NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, prediction_id)
);
