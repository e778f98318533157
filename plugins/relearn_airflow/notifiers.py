"""Where Relearn's alerts go: Airflow notifiers chosen by Airflow connections.

Each connection id in ``ALERT_CONN_IDS`` that exists is one channel, picked by its type:

- ``http`` / ``https`` (e.g. ``AIRFLOW_CONN_RELEARN_ALERTS_WEBHOOK='https://hooks.example/x'``):
  ``WebhookNotifier`` POSTs the alert as JSON to the connection's URL (host, port and path
  from the connection; a password is sent as a bearer token; extra ``headers`` are added);
- ``smtp`` / ``email``: the SMTP provider's ``SmtpNotifier`` mails it; recipients in the
  connection's extra ``to`` (comma-separated), sender in its ``from_email``.

With none of them defined, alerts are only logged (and stored in the ``alerts`` table).
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseNotifier

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Connection, Context

    from relearn.store.alerts import AlertRow

log = logging.getLogger(__name__)

ALERT_CONN_IDS = ("relearn_alerts_webhook", "relearn_alerts_smtp")
WEBHOOK_TYPES = ("http", "https")
EMAIL_TYPES = ("smtp", "email")


def alert_payload(alert: AlertRow) -> dict[str, Any]:
    """The alert as JSON-friendly fields (the webhook's body)."""
    return {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in asdict(alert).items()
        if key not in ("delivered_at", "attempts", "last_error")
    }


class WebhookNotifier(BaseNotifier):
    """POST ``payload`` as JSON to the URL of an HTTP connection.

    :param http_conn_id: the connection (``http``/``https``: host, port, path as schema).
    :param payload: the JSON body (templated).
    :param timeout: seconds to wait for the receiver.
    """

    template_fields = ("payload",)

    def __init__(
        self, *, http_conn_id: str, payload: dict[str, Any], timeout: float = 10.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id
        self.payload = payload
        self.timeout = timeout

    @staticmethod
    def url(conn: Connection) -> str:
        host = conn.host or ""
        if "://" in host:
            return host
        port = f":{conn.port}" if conn.port else ""
        path = f"/{conn.schema.lstrip('/')}" if conn.schema else ""
        return f"{conn.conn_type}://{host}{port}{path}"

    def notify(self, context: Context) -> None:
        import requests

        conn = BaseHook.get_connection(self.http_conn_id)
        headers = {"Content-Type": "application/json", **conn.extra_dejson.get("headers", {})}
        if conn.password:
            headers["Authorization"] = f"Bearer {conn.password}"
        answer = requests.post(
            self.url(conn), data=json.dumps(self.payload), headers=headers, timeout=self.timeout
        )
        answer.raise_for_status()


def _email(alert: AlertRow) -> tuple[str, str]:
    subject = f"[Relearn {alert.severity}] {alert.model_name}: {alert.kind}"
    # Messages quote run errors and alias reasons: text, never markup.
    body = f"<p>{html.escape(alert.message)}</p>"
    if alert.recommendation:
        body += f"<p><b>What to do:</b> {html.escape(alert.recommendation)}</p>"
    body += f"<p>Raised at {alert.raised_at.isoformat()} by {html.escape(alert.trigger_key)}.</p>"
    return subject, body


def _channel(conn: Connection, alert: AlertRow) -> BaseNotifier | None:
    if conn.conn_type in WEBHOOK_TYPES:
        return WebhookNotifier(http_conn_id=conn.conn_id, payload=alert_payload(alert))
    if conn.conn_type in EMAIL_TYPES:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        to = conn.extra_dejson.get("to")
        if not to:
            raise ValueError(f"connection {conn.conn_id}: set the recipients in its extra 'to'")
        subject, body = _email(alert)
        return SmtpNotifier(
            to=[address.strip() for address in str(to).split(",")],
            subject=subject,
            html_content=body,
            smtp_conn_id=conn.conn_id,
        )
    log.warning("connection %s: type %s is no alert channel", conn.conn_id, conn.conn_type)
    return None


def _connections(conn_ids: tuple[str, ...]) -> list[Connection]:
    from airflow.sdk.exceptions import AirflowNotFoundException

    found = []
    for conn_id in conn_ids:
        try:
            found.append(BaseHook.get_connection(conn_id))
        except AirflowNotFoundException:
            continue
    return found


def alert_sender(
    context: Context, conn_ids: tuple[str, ...] = ALERT_CONN_IDS
) -> Callable[[AlertRow], None]:
    """A ``send(alert)`` for ``relearn.monitoring.alerts.deliver`` over every defined channel;
    with none defined it logs the alert (it is stored either way)."""
    connections = _connections(conn_ids)
    if not connections:
        log.info("no alert connection (%s) defined: alerts are logged only", ", ".join(conn_ids))

    def send(alert: AlertRow) -> None:
        log.warning("alert %s [%s] %s: %s", alert.id, alert.severity, alert.kind, alert.message)
        for conn in connections:
            notifier = _channel(conn, alert)
            if notifier is not None:
                notifier.notify(context)
                log.info("alert %s sent through %s", alert.id, conn.conn_id)

    return send
