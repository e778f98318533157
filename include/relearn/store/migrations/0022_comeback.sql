-- A decayed champion's check may make a previous champion champion again instead of retraining
-- (relearn.drift.comeback): the action 'comeback'.
ALTER TABLE drift_reports DROP CONSTRAINT drift_reports_action_check;
ALTER TABLE drift_reports ADD CONSTRAINT drift_reports_action_check
    CHECK (action IN ('none', 'retrain', 'comeback', 'cooldown', 'dry_run'));
