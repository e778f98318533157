from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from relearn.settings import (
    StackError,
    libpq_url,
    load_settings,
    read_or_create_secret,
    redact,
    sqlalchemy_url,
)


def test_embedded_urls_use_the_configured_port_and_the_stacks_password(tmp_path) -> None:
    settings = load_settings({"RELEARN_PG_PORT": "6543", "RELEARN_HOME": str(tmp_path)})
    assert settings.embedded_postgres
    password = read_or_create_secret(settings.postgres_password_file)  # as the stack does
    url = settings.database_url("mlflow")
    assert url == f"postgresql://postgres:{password}@127.0.0.1:6543/mlflow"
    assert len(password) >= 24
    assert stat.S_IMODE((tmp_path / "postgres-password").stat().st_mode) == 0o600
    # Stable across calls and processes: the file is the one source of the secret.
    assert load_settings({"RELEARN_HOME": str(tmp_path)}).postgres_password == password
    assert settings.tracking_uri == "http://127.0.0.1:5000"


def test_without_a_stack_a_url_is_a_clear_error_and_nothing_is_written(tmp_path) -> None:
    """A command run outside the project must not make up a password for a server that
    does not exist (and leave a ``.relearn/`` wherever it ran)."""
    home = tmp_path / ".relearn"
    with pytest.raises(StackError, match=r"no Relearn stack in .*make run.*RELEARN_HOME"):
        load_settings({"RELEARN_HOME": str(home)}).database_url("relearn")
    assert not home.exists()


def test_concurrent_first_reads_agree_on_one_secret(tmp_path) -> None:
    path = tmp_path / "secret"
    with ThreadPoolExecutor(8) as pool:
        values = set(pool.map(lambda _: read_or_create_secret(path), range(32)))
    assert values == {path.read_text().strip()}
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://u:s3cret@h:5/d") == "postgresql://u:***@h:5/d"
    assert redact("postgresql://u@h:5/d") == "postgresql://u@h:5/d"


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
    with pytest.raises(ValueError, match="RELEARN_LOG_SERVER_PORT='0' is not a TCP port"):
        load_settings({"RELEARN_LOG_SERVER_PORT": "0"})
    with pytest.raises(ValueError, match="unknown database 'x'"):
        load_settings({}).database_url("x")


def test_driver_suffixes_convert_both_ways() -> None:
    assert libpq_url("postgresql+psycopg2://a@h/d") == "postgresql://a@h/d"
    assert sqlalchemy_url("postgresql://a@h/d") == "postgresql+psycopg2://a@h/d"
