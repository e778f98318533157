-- Health score (issue 12 §2): each check stores its score, its three parts and the figures
-- they came from as columns, so the page and /metrics read them without parsing JSON.
-- Older rows keep NULLs (they were judged by the earlier rules, recorded in details).
ALTER TABLE health_checks
    ADD COLUMN score              DOUBLE PRECISION,
    ADD COLUMN availability       DOUBLE PRECISION,
    ADD COLUMN error_score        DOUBLE PRECISION,
    ADD COLUMN latency_score      DOUBLE PRECISION,
    ADD COLUMN window_start       TIMESTAMPTZ,
    -- Every prediction of the model in [window_start, checked_at), and the median of the same
    -- window on each of the 7 days before (NULL: no traffic on any of them).
    ADD COLUMN predictions        BIGINT,
    ADD COLUMN usual_predictions  DOUBLE PRECISION,
    ADD COLUMN labelled           BIGINT,
    ADD COLUMN accuracy           DOUBLE PRECISION,
    ADD COLUMN reference_accuracy DOUBLE PRECISION,
    ADD COLUMN latency_p95_ms     DOUBLE PRECISION,
    ADD COLUMN latency_budget_ms  DOUBLE PRECISION,
    -- [{"part": "availability" | "error" | "latency", "issue": ..., "recommendation": ...}]
    ADD COLUMN issues             JSONB NOT NULL DEFAULT '[]'::jsonb;

-- The latest check of a model (the page, /metrics, alerts) is one backward step of
-- health_checks_model_time (model_name, checked_at) from 0009.

-- Alerts (issue 12 §5): one row per raised alert. ``subject`` names what it is about (the
-- health check's trigger key, the drift report, retraining run, A/B test or request id), so
-- the same event never alerts twice; a cooldown per (model, kind) keeps a lasting condition
-- from alerting every hour. Delivery is recorded per alert, so a failed send is retried.
CREATE TABLE alerts (
    id             BIGSERIAL PRIMARY KEY,
    model_name     TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN (
                       'health_low', 'drift', 'retraining_failed', 'rollback', 'request_stuck')),
    severity       TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
    subject        TEXT NOT NULL,
    message        TEXT NOT NULL,
    recommendation TEXT,
    raised_at      TIMESTAMPTZ NOT NULL,
    -- The DAG run (or CLI call) that raised it.
    trigger_key    TEXT NOT NULL,
    delivered_at   TIMESTAMPTZ,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    UNIQUE (model_name, kind, subject)
);
CREATE INDEX alerts_model_kind_time ON alerts (model_name, kind, raised_at DESC);
CREATE INDEX alerts_time ON alerts (raised_at DESC);
CREATE INDEX alerts_undelivered ON alerts (raised_at) WHERE delivered_at IS NULL;
