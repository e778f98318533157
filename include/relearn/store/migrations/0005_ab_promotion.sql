-- Staged A/B promotion: test progress, every decision with its numbers, and alias moves
-- recorded before they happen (two alias writes are not atomic) plus their history.

ALTER TABLE ab_tests
    ADD COLUMN policy           TEXT NOT NULL DEFAULT 'staged'
                                CHECK (policy IN ('staged', 'bandit')),
    ADD COLUMN stage_index      INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN stage_started_at TIMESTAMPTZ,
    -- Human approval of the final promotion: NULL (not needed yet), requested, approved, rejected.
    ADD COLUMN approval         TEXT CHECK (approval IN ('requested', 'approved', 'rejected'));

CREATE TABLE ab_decisions (
    id             BIGSERIAL PRIMARY KEY,
    test_id        UUID NOT NULL REFERENCES ab_tests (id),
    -- "Now" of the decision: the DAG run's data interval end, or the CLI's clock.
    decided_at     TIMESTAMPTZ NOT NULL,
    action         TEXT NOT NULL CHECK (action IN (
                       'start', 'hold', 'expand', 'rebalance', 'promote', 'rollback', 'pause',
                       'resume', 'await_approval', 'abort')),
    traffic_before INTEGER NOT NULL,
    traffic_after  INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    numbers        JSONB NOT NULL DEFAULT '{}'::jsonb,
    decided_by     TEXT NOT NULL DEFAULT 'policy',
    -- The DAG run (or CLI call) that decided: a retried task records nothing twice.
    run_key        TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (test_id, run_key)
);
CREATE INDEX ab_decisions_test ON ab_decisions (test_id, decided_at);

CREATE TABLE alias_moves (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    model_name  TEXT NOT NULL,
    -- [{"alias": ..., "version": ... or null (remove), "previous": ...}] in write order.
    moves       JSONB NOT NULL,
    reason      TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    -- A test whose status changes with the move (promoted, rolled_back, aborted).
    ab_test_id  UUID REFERENCES ab_tests (id),
    test_status TEXT,
    -- abandoned: could not be applied (e.g. a version deleted meanwhile), given up by force.
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'abandoned')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at     TIMESTAMPTZ
);
-- One move at a time per model: a second must wait until the first is finished.
CREATE UNIQUE INDEX alias_moves_one_pending ON alias_moves (model_name) WHERE status = 'pending';

CREATE TABLE alias_history (
    id               BIGSERIAL PRIMARY KEY,
    model_name       TEXT NOT NULL,
    alias            TEXT NOT NULL,
    version          TEXT,            -- NULL: the alias was removed
    previous_version TEXT,
    changed_at       TIMESTAMPTZ NOT NULL,
    changed_by       TEXT NOT NULL,
    reason           TEXT NOT NULL,
    move_id          UUID REFERENCES alias_moves (id)
);
CREATE INDEX alias_history_model ON alias_history (model_name, changed_at);

-- Per-arm aggregation reads one model's labelled predictions of a period by arm.
CREATE INDEX prediction_log_arm_window ON prediction_log (model_name, served_by, predicted_at);
