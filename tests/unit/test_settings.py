from __future__ import annotations

import pytest

from relearn.settings import libpq_url, load_settings, sqlalchemy_url


def test_embedded_urls_use_the_configured_port() -> None:
    settings = load_settings({"RELEARN_PG_PORT": "6543", "RELEARN_HOME": "/tmp/x"})
    assert settings.embedded_postgres
    assert settings.database_url("mlflow") == "postgresql://postgres@127.0.0.1:6543/mlflow"
    assert settings.tracking_uri == "http://127.0.0.1:5000"


def test_external_server_derives_the_other_databases() -> None:
    settings = load_settings(
        {
            "RELEARN_DATABASE_URL": "postgresql://u:p@db.example:5432/relearn",
            "RELEARN_MLFLOW_DATABASE_URL": "postgresql://m:q@other:5432/tracking",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        }
    )
    assert not settings.embedded_postgres
    assert settings.database_url("airflow") == "postgresql://u:p@db.example:5432/airflow"
    assert settings.database_url("mlflow") == "postgresql://m:q@other:5432/tracking"
    assert settings.tracking_uri == "http://mlflow:5000"


def test_bad_port_and_unknown_database_are_rejected() -> None:
    with pytest.raises(ValueError, match="RELEARN_PG_PORT='abc' is not a TCP port"):
        load_settings({"RELEARN_PG_PORT": "abc"})
    with pytest.raises(ValueError, match="unknown database 'x'"):
        load_settings({}).database_url("x")


def test_driver_suffixes_convert_both_ways() -> None:
    assert libpq_url("postgresql+psycopg2://a@h/d") == "postgresql://a@h/d"
    assert sqlalchemy_url("postgresql://a@h/d") == "postgresql+psycopg2://a@h/d"
