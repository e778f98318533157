-- Relearn's initial schema: the prediction log, retraining runs and requests,
-- usage events, feedback and health checks.

CREATE TABLE prediction_log (
    prediction_id   UUID PRIMARY KEY,
    model_name      TEXT NOT NULL,
    model_version   TEXT NOT NULL,
    unit_id         TEXT,
    predicted_at    TIMESTAMPTZ NOT NULL,
    features        JSONB NOT NULL,
    predicted_label TEXT NOT NULL,
    -- No range CHECK on purpose: logs may come from other producers, and the retraining
    -- pipeline's data validation quarantines out-of-range rows with a reason.
    confidence      DOUBLE PRECISION NOT NULL,
    probabilities   JSONB,
    latency_ms      REAL,
    served_by       TEXT NOT NULL DEFAULT 'champion',
    actual_label    TEXT,
    outcome_at      TIMESTAMPTZ,
    logged_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Retraining and monitoring read a time window of one model's labelled predictions.
CREATE INDEX prediction_log_labelled_window
    ON prediction_log (model_name, predicted_at) WHERE actual_label IS NOT NULL;
CREATE INDEX prediction_log_window ON prediction_log (model_name, predicted_at);

CREATE TABLE model_retraining_runs (
    id             UUID PRIMARY KEY,
    model_name     TEXT NOT NULL,
    source         TEXT CHECK (source IN ('auto_daily', 'manual', 'decay_triggered')),
    dataset_size   INTEGER,
    fine_tune_flag BOOLEAN,
    status         TEXT CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    metrics        JSONB,
    model_version  TEXT,
    started_at     TIMESTAMPTZ,
    completed_at   TIMESTAMPTZ,
    log_url        TEXT,
    error_message  TEXT,
    triggered_by   UUID,
    dag_id         TEXT,
    dag_run_id     TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A DAG run retrains a model at most once, however often Airflow retries the task.
    UNIQUE (dag_run_id, model_name)
);
CREATE INDEX model_retraining_runs_model ON model_retraining_runs (model_name, created_at DESC);

CREATE TABLE model_retraining_requests (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    model_name        TEXT NOT NULL,
    requested_by      UUID,
    reason            TEXT,
    priority          TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high')),
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'completed', 'cancelled')),
    processed_at      TIMESTAMPTZ,
    retraining_run_id UUID REFERENCES model_retraining_runs (id),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX model_retraining_requests_pending
    ON model_retraining_requests (model_name, created_at) WHERE status = 'pending';

CREATE TABLE usage_events (
    id          BIGSERIAL PRIMARY KEY,
    model_name  TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    unit_id     TEXT,
    payload     JSONB NOT NULL DEFAULT '{}'::jsonb,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX usage_events_model_time ON usage_events (model_name, occurred_at);

CREATE TABLE feedback (
    id            BIGSERIAL PRIMARY KEY,
    prediction_id UUID NOT NULL REFERENCES prediction_log (prediction_id) ON DELETE CASCADE,
    rating        SMALLINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment       TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE health_checks (
    id             BIGSERIAL PRIMARY KEY,
    model_name     TEXT NOT NULL,
    checked_at     TIMESTAMPTZ NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('healthy', 'degraded', 'unhealthy')),
    champion_version TEXT,
    details        JSONB NOT NULL,
    dag_run_id     TEXT,
    UNIQUE (model_name, dag_run_id)
);
