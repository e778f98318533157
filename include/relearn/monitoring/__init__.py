"""Monitoring: the health score (``score``), Prometheus metrics (``metrics``) and alerts
(``alerts``). The health check that feeds them is ``relearn.health``."""
