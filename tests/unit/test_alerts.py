"""Which health checks raise an alert (the pure part of ``relearn.monitoring.alerts``)."""

from __future__ import annotations

from relearn.monitoring.alerts import health_alert
from tests.integration.test_alerts import check_row


def test_health_alert_only_below_the_bar() -> None:
    model = "m"
    assert health_alert(check_row(model, "k", 0.8, "healthy")) is None
    low = health_alert(check_row(model, "k", 0.6, "degraded"))
    assert (low.kind, low.severity, low.subject) == ("health_low", "warning", "health_check:k")
    assert "0 predictions" in low.message and low.recommendation == "look"
    worst = health_alert(check_row(model, "k", 0.0, "unhealthy"))
    assert worst.severity == "critical"
