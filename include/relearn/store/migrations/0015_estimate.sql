-- Performance while outcomes are late: a drift check also estimates each version's accuracy
-- from its calibrated confidences (CBPE) and may warn with the verdict 'estimated_decay'.

ALTER TABLE drift_reports DROP CONSTRAINT drift_reports_verdict_check;
ALTER TABLE drift_reports ADD CONSTRAINT drift_reports_verdict_check
    CHECK (verdict IN ('stable', 'drifted', 'decayed', 'estimated_decay', 'insufficient_data'));

-- One entry per version checked (champion, and the challenger during an A/B test): estimated
-- accuracy, realised accuracy and calibration error on the rows whose outcome is in.
ALTER TABLE drift_reports ADD COLUMN estimate JSONB;
