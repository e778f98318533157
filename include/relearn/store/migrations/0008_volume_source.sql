-- Retraining on volume (enough new outcomes since the last run) records its runs with its own
-- source, so they can be told apart from the daily, manual and drift-triggered ones.
ALTER TABLE model_retraining_runs DROP CONSTRAINT model_retraining_runs_source_check;
ALTER TABLE model_retraining_runs ADD CONSTRAINT model_retraining_runs_source_check
    CHECK (source IN ('auto_daily', 'manual', 'decay_triggered', 'drift_triggered', 'auto_volume'));
