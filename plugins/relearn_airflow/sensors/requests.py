"""``RetrainingRequestSensor``: claims the next retraining request, deferring while none waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from relearn_airflow.hooks.relearn import RelearnHook
from relearn_airflow.triggers.requests import RetrainingRequestTrigger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class RetrainingRequestSensor(BaseSensorOperator):
    """Return the claimed request (as a dict) once one is pending; hold no worker meanwhile.

    The claim is made here, after the trigger fired, with ``FOR UPDATE SKIP LOCKED``: high
    priority first, then oldest. The claimer is the DAG run, so a retry of this task gets
    back the request its first try claimed instead of claiming a second one. Before every
    claim, leases that ran out (or were never set) are requeued, or failed after
    ``max_attempts``, and requests for models the configuration does not know are failed
    with the reason, so they cannot wait forever.

    The sensor's ``timeout`` bounds the whole wait, deferrals included: it is handed to
    every deferral (as Airflow's own sensors do), so ``soft_fail`` turns a quiet period
    into a skip.

    :param model_names: models to serve; None serves every configured model.
    :param relearn_conn_id: connection to Relearn's database.
    :param config_path: the Relearn YAML file (default: ``$RELEARN_CONFIG``).
    :param poll_interval: the trigger's fallback poll, in seconds.
    :param lease: how long a claim holds before it is considered abandoned.
    :param max_attempts: claims per request before it fails.
    """

    template_fields: Sequence[str] = ("model_names",)

    def __init__(
        self,
        *,
        model_names: list[str] | None = None,
        relearn_conn_id: str = RelearnHook.default_conn_name,
        config_path: str | None = None,
        poll_interval: float = 30.0,
        lease: timedelta = timedelta(hours=2),
        max_attempts: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_names = model_names
        self.relearn_conn_id = relearn_conn_id
        self.config_path = config_path
        self.poll_interval = poll_interval
        self.lease = lease
        self.max_attempts = max_attempts

    def execute(self, context: Context) -> dict[str, Any]:
        deadline = datetime.now(UTC) + timedelta(seconds=self.timeout)
        return self._claim_or_defer(context, deadline)

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, deadline: str | None = None
    ) -> dict[str, Any]:
        # Another claimer may have been faster: then wait again, for what is left of the timeout.
        if deadline is None:  # deferred before deadlines were passed along: a full timeout
            return self.execute(context)
        return self._claim_or_defer(context, datetime.fromisoformat(deadline))

    def _claim_or_defer(self, context: Context, deadline: datetime) -> dict[str, Any]:
        request = self._claim(context)
        if request is None:
            served, known = self._models()
            self.defer(
                trigger=RetrainingRequestTrigger(
                    served, self.relearn_conn_id, self.poll_interval, known_models=known
                ),
                method_name="execute_complete",
                kwargs={"deadline": deadline.isoformat()},
                timeout=max(deadline - datetime.now(UTC), timedelta(0)),
            )
        return request

    def poke(self, context: Context) -> bool:
        return self._claim(context) is not None

    def _claim(self, context: Context) -> dict[str, Any] | None:
        from relearn.store.db import transaction
        from relearn.store.requests import (
            claim_next,
            claimed_by,
            fail_unknown_models,
            reap_expired_leases,
        )

        claimer = f"{context['dag_run'].dag_id}/{context['dag_run'].run_id}"
        served, known = self._models()
        with transaction(self._hook().database_url) as connection:
            requeued, failed = reap_expired_leases(connection, max_attempts=self.max_attempts)
            if requeued or failed:
                self.log.warning("expired leases: %d requeued, %d failed", requeued, failed)
            for unknown in fail_unknown_models(connection, known):
                self.log.error("request %s failed: %s", unknown.id, unknown.error_message)
            request = claimed_by(connection, claimer) or claim_next(
                connection, claimer, model_names=served, lease=self.lease
            )
        if request is None:
            return None
        self.log.info(
            "claimed request %s: %s, %s priority, attempt %d (%r)",
            request.id,
            request.model_name,
            request.priority,
            request.attempts,
            request.reason,
        )
        return request.as_dict()

    def _models(self) -> tuple[list[str], list[str]]:
        """(the models this sensor serves, every model a request may name)."""
        configured = self._hook().config.model_names
        served = list(self.model_names or configured)
        return served, sorted({*configured, *served})

    def _hook(self) -> RelearnHook:
        return RelearnHook(self.relearn_conn_id, config_path=self.config_path)
