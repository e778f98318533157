-- Manual retraining requests as a work queue: leases, attempts, and a NOTIFY on new work.

ALTER TABLE model_retraining_requests
    ADD COLUMN claimed_by       TEXT,
    ADD COLUMN lease_expires_at TIMESTAMPTZ,
    ADD COLUMN attempts         INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN error_message    TEXT;

-- Widened on purpose: a request whose retraining failed, or whose claims kept dying until
-- the attempt limit, ends as 'failed' with the reason instead of looking 'completed'.
ALTER TABLE model_retraining_requests DROP CONSTRAINT model_retraining_requests_status_check;
ALTER TABLE model_retraining_requests ADD CONSTRAINT model_retraining_requests_status_check
    CHECK (status IN ('pending', 'processing', 'completed', 'cancelled', 'failed'));

-- The claim reads pending requests by priority, then age.
CREATE INDEX model_retraining_requests_queue ON model_retraining_requests (
    (CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END), created_at
) WHERE status = 'pending';
CREATE INDEX model_retraining_requests_leases
    ON model_retraining_requests (lease_expires_at) WHERE status = 'processing';

-- Whoever inserts a request (any client, a plain INSERT included) wakes the waiting sensor.
CREATE FUNCTION relearn_notify_retraining_request() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('relearn_retraining_requests', NEW.model_name);
    RETURN NEW;
END
$$;

CREATE TRIGGER model_retraining_requests_notify
    AFTER INSERT OR UPDATE OF status ON model_retraining_requests
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION relearn_notify_retraining_request();
