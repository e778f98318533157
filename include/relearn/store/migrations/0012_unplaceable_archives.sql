-- Rows whose predicted_at no UTC day (no Python date) can hold -- '-infinity', 'infinity',
-- BC, after year 9999; other services write the log and Postgres accepts them all -- are
-- archived apart, in the model's "unplaceable" bucket: an archive row with no day.
ALTER TABLE prediction_archives ALTER COLUMN day DROP NOT NULL;
-- The bucket's parts are numbered like a day's (NULLs never collide in the UNIQUE above).
CREATE UNIQUE INDEX prediction_archives_unplaceable_part
    ON prediction_archives (model_name, part) WHERE day IS NULL;
