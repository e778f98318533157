"""docker-compose.yaml: valid against the Compose specification, and Relearn's invariants.

The schema is the Compose specification's JSON schema as vendored by the ``check-jsonschema``
package (``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, from the
compose-spec/compose-spec repository). No container engine runs where these tests run, so the
file is checked statically; the lead's note says what was not brought up.
"""

from __future__ import annotations

import copy
import json
import re
from importlib.resources import files

import jsonschema
import pytest
import yaml

from relearn_airflow.queues import DEFAULT_QUEUE, TRAINING_QUEUE
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
COMMON = "x-airflow-common"
# Services that run an Airflow component (everything built on the common anchor).
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker-default",
    "airflow-worker-training",
    "flower",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_AUTH$", re.IGNORECASE)
# ${NAME:?message}: required, no default, so no value can hide in the file.
REQUIRED_VARIABLE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}$")
URL_CREDENTIALS = re.compile(r"://[^:/@\s]*:([^@\s]+)@")


@pytest.fixture(scope="module")
def text() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def compose(text) -> dict:
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        (files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json").read_text()
    )
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_the_file_follows_the_compose_specification(compose, validator):
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_a_broken_file(compose, validator):
    """The validation above can fail: a misspelt key and a wrong type are both reported."""
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    broken["services"]["postgres"]["restart"] = ["always"]
    paths = {e.json_path for e in validator.iter_errors(broken)}
    assert "$.services.redis" in paths
    assert "$.services.postgres.restart" in paths


def _service_nodes(text: str) -> tuple[dict[str, yaml.Node], dict[str, yaml.Node]]:
    root = yaml.compose(text)
    top = {key.value: value for key, value in root.value}
    return {key.value: value for key, value in top["services"].value}, top


def _merged_nodes(node: yaml.MappingNode) -> list[yaml.Node]:
    return [value for key, value in node.value if key.tag == "tag:yaml.org,2002:merge"]


def test_every_airflow_service_shares_the_one_common_anchor(text, compose):
    """One definition of image, environment, volumes and dependencies for every component:
    a second copy would drift (a worker with another JWT secret cannot run a task)."""
    services, top = _service_nodes(text)
    common = top[COMMON]
    sharing = {name for name, node in services.items() if common in _merged_nodes(node)}
    assert sharing == AIRFLOW_SERVICES
    environment = compose[COMMON]["environment"]
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert service["environment"].items() >= environment.items(), name
        assert service["image"] == compose[COMMON]["image"]


def test_airflow_3_settings_point_at_the_api_server(compose):
    environment = compose[COMMON]["environment"]
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    url = environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    match = re.fullmatch(r"http://([a-z-]+):(\d+)/execution/", url)
    assert match is not None, url
    host, port = match.groups()
    assert host in compose["services"]
    assert f"{port}:{port}" in compose["services"][host]["ports"]
    assert REQUIRED_VARIABLE.match(environment["AIRFLOW__API_AUTH__JWT_SECRET"])
    assert REQUIRED_VARIABLE.match(environment["AIRFLOW__CORE__FERNET_KEY"])
    assert environment["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert "@redis:" in environment["AIRFLOW__CELERY__BROKER_URL"]


def _queues(command: list[str]) -> str:
    return command[command.index("--queues") + 1]


def test_one_worker_per_queue_with_the_queue_names_of_the_operators(compose):
    services = compose["services"]
    default = _queues(services["airflow-worker-default"]["command"])
    training = _queues(services["airflow-worker-training"]["command"])
    assert default == f"${{RELEARN_QUEUE_DEFAULT:-{DEFAULT_QUEUE}}}"
    assert training == f"${{RELEARN_QUEUE_TRAINING:-{TRAINING_QUEUE}}}"
    environment = compose[COMMON]["environment"]
    # The dag-processor (which sets each task's queue) reads the same names as the workers.
    assert environment["RELEARN_QUEUE_DEFAULT"] == default
    assert environment["RELEARN_QUEUE_TRAINING"] == training
    assert environment["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == default
    assert "flower" in services["flower"]["profiles"]


def _strings(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def test_no_secret_is_written_in_the_file(compose):
    found = []
    for path, value in _strings(compose):
        name = path.rsplit(".", 1)[-1]
        secret = SECRET_NAME.search(name) and not name.endswith("_FILE")
        if secret and not REQUIRED_VARIABLE.match(value):
            found.append(f"{path} = {value!r}")
        for password in URL_CREDENTIALS.findall(value):
            if not REQUIRED_VARIABLE.match(password):
                found.append(f"{path}: password {password!r} in a URL")
    for service in compose["services"].values():
        command = service.get("command")
        if isinstance(command, list) and "--requirepass" in command:
            assert REQUIRED_VARIABLE.match(command[command.index("--requirepass") + 1])
    assert found == []


def test_the_example_env_file_holds_no_secret_value():
    assignments = [
        line
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert assignments == []  # every variable is a commented example; secrets have no value
    text = (ROOT / ".env.example").read_text()
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"):
        assert re.search(rf"^# {name}=$", text, re.MULTILINE), name


def test_long_running_services_are_health_checked_and_restarted(compose):
    for name, service in compose["services"].items():
        if name == "airflow-init":
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "always", name
        assert service["healthcheck"]["test"], name


def test_components_wait_for_init_and_init_for_its_servers(compose):
    services = compose["services"]
    init = services["airflow-init"]["depends_on"]
    assert {name: init[name]["condition"] for name in ("postgres", "redis", "mlflow")} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "mlflow": "service_healthy",
    }
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        condition = services[name]["depends_on"]["airflow-init"]["condition"]
        assert condition == "service_completed_successfully", name
    assert "relearn migrate" in services["airflow-init"]["command"][-1]
    assert "relearn bootstrap" in services["airflow-init"]["command"][-1]


def test_the_image_ships_the_pinned_airflow():
    """The Dockerfile's base image tag names the apache-airflow version requirements.txt pins."""
    pinned = re.search(
        r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert pinned is not None
    assert f"ARG AIRFLOW_VERSION={pinned.group(1)}\n" in dockerfile
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in dockerfile
