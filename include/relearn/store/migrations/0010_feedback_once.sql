-- Feedback from the collection API: one rating per prediction, so a retried request is a
-- no-op (the first rating wins, as the first outcome does). Nothing wrote this table before.
CREATE UNIQUE INDEX feedback_one_per_prediction ON feedback (prediction_id);
