"""The collection API in the real Airflow api-server app: auth, predictions, outcomes,
feedback, assignment and models, against the session's Postgres and MLflow."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from relearn.registry import CHALLENGER, CHAMPION, registry_client
from relearn.serving.router import SplitRouter, live_split
from relearn.store.abtests import (
    ACTIVE,
    ArmWindow,
    arm_totals,
    live_test,
    request_test,
    update_test,
)
from relearn.store.db import transaction
from tests.integration.collect_rows import prediction_rows
from tests.integration.traffic import register_copy

pytestmark = pytest.mark.integration

API = "/relearn/api/v1"
AB_MODEL = "collect_ab"


@pytest.fixture(scope="module")
def config_file(config, tmp_path_factory) -> Path:
    """The session's config plus ``collect_ab`` (a copy of churn) for an A/B test of its own."""
    models = [m.model_dump(mode="json") for m in config.models]
    models.append({**config.model("churn").model_dump(mode="json"), "name": AB_MODEL})
    path = tmp_path_factory.mktemp("collect") / "relearn.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    return path


@pytest.fixture(scope="module")
def client(stack, champion, config_file):
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from relearn_airflow.api.configured import relearn_hook

    previous = os.environ.get("RELEARN_CONFIG")
    os.environ["RELEARN_CONFIG"] = str(config_file)
    relearn_hook.cache_clear()
    try:
        with TestClient(create_app()) as test_client:
            yield test_client
    finally:
        os.environ["RELEARN_CONFIG"] = previous or ""
        relearn_hook.cache_clear()


@pytest.fixture(scope="module")
def token(client) -> str:
    """A REST API token, obtained as a user would: ``POST /auth/token`` with the password."""
    passwords = Path(os.environ["AIRFLOW_HOME"]) / "passwords.json"
    username, password = next(iter(json.loads(passwords.read_text()).items()))
    answer = client.post("/auth/token", json={"username": username, "password": password})
    assert answer.status_code == 201, answer.text
    return answer.json()["access_token"]


@pytest.fixture(scope="module")
def auth(token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _logged(database_url: str, ids: list[str]) -> dict[str, tuple]:
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT prediction_id::text, predicted_label, actual_label, served_by"
            " FROM prediction_log WHERE prediction_id = ANY(%s::uuid[])",
            (ids,),
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/models"),
        ("get", "/models/churn"),
        ("get", "/models/churn/assignment?unit_id=u1"),
        ("post", "/models/churn/predictions"),
        ("post", "/models/churn/outcomes"),
        ("post", "/models/churn/feedback"),
    ],
)
def test_every_route_needs_a_token(client, method, path):
    answer = getattr(client, method)(API + path)
    assert answer.status_code == 401, answer.text
    forged = getattr(client, method)(API + path, headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code in (401, 403), forged.text


def test_models_are_listed_with_their_champion(client, auth, champion):
    answer = client.get(f"{API}/models", headers=auth)
    assert answer.status_code == 200, answer.text
    by_name = {m["name"]: m for m in answer.json()}
    assert by_name["churn"]["champion_version"] == str(champion.version)
    detail = client.get(f"{API}/models/churn", headers=auth).json()
    assert detail["aliases"][CHAMPION] == str(champion.version)
    assert detail["versions"][0]["version"] == 1
    assert detail["classes"] == ["no", "yes"]


def test_unknown_model_is_404_with_the_known_names(client, auth):
    for method, path in (("get", "/models/nope"), ("post", "/models/nope/outcomes")):
        body = {"outcomes": [{"prediction_id": str(uuid.uuid4()), "actual_label": "no"}]}
        kwargs = {"json": body} if method == "post" else {}
        answer = getattr(client, method)(f"{API}{path}", headers=auth, **kwargs)
        assert answer.status_code == 404
        assert "unknown model 'nope'" in answer.json()["detail"]
        assert "churn" in answer.json()["detail"] and AB_MODEL in answer.json()["detail"]


def test_a_batch_keeps_its_good_rows_and_reports_the_bad_ones(
    client, auth, model_cfg, database_url
):
    rows = prediction_rows(model_cfg, 6, seed=1)
    rows[1]["features"]["tenure_months"] = 9999  # outside [0, 240]
    rows[2]["predicted_label"] = "maybe"
    rows[3]["features"] = ["not", "an", "object"]
    rows[4]["prediction_id"] = "not-a-uuid"
    del rows[5]["confidence"]
    rows[5].update(predicted_label="yes", probabilities={"no": 0.2, "yes": 0.8})  # confidence
    answer = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == [rows[0]["prediction_id"], rows[5]["prediction_id"]]
    assert (body["logged"], body["repeated"]) == (2, 0)
    reasons = {r["index"]: r["reasons"] for r in body["rejected"]}
    assert sorted(reasons) == [1, 2, 3, 4]
    assert reasons[1] == ["feature 'tenure_months' outside [0, 240]"]
    assert reasons[2] == ["predicted_label not in classes ['no', 'yes']"]
    assert "features is not a JSON object" in reasons[3]
    assert reasons[4] == ["prediction_id is not a UUID"]
    logged = _logged(database_url, [r["prediction_id"] for i, r in enumerate(rows) if i != 4])
    assert set(logged) == {rows[0]["prediction_id"], rows[5]["prediction_id"]}


def test_integer_labels_versions_and_unit_ids_are_kept_as_text(
    client, auth, model_cfg, database_url
):
    """Other languages send classes [0, 1], version numbers and user ids as JSON integers."""
    rows = prediction_rows(model_cfg, 2, seed=7)
    rows[0].update(model_version=1, unit_id=42)
    rows[1]["predicted_label"] = 1  # not a class of churn: the row is refused, not the batch
    answer = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == [rows[0]["prediction_id"]]
    assert answer.json()["rejected"][0]["reasons"] == [
        "predicted_label not in classes ['no', 'yes']"
    ]
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_version, unit_id FROM prediction_log WHERE prediction_id = %s",
            (rows[0]["prediction_id"],),
        )
        assert cursor.fetchone() == ("1", "42")
    outcome = {"prediction_id": rows[0]["prediction_id"], "actual_label": 0}
    answer = client.post(f"{API}/models/churn/outcomes", headers=auth, json={"outcomes": [outcome]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected"][0]["reasons"] == ["actual_label not in classes ['no', 'yes']"]
    rows = prediction_rows(model_cfg, 1, seed=8)
    rows[0]["predicted_label"] = True  # a boolean is not a label: its row is refused
    refused = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    assert refused.status_code == 200, refused.text
    assert refused.json()["rejected"][0]["reasons"] == [
        "predicted_label not in classes ['no', 'yes']"
    ]


def test_a_value_of_the_wrong_type_rejects_its_row_not_the_batch(
    client, auth, model_cfg, database_url
):
    """A new user's batches were 422 as a whole for one bad field (finding 10)."""
    rows = prediction_rows(model_cfg, 5, seed=9)
    rows[1]["served_by"] = "canary"
    rows[2]["model_version"] = 1.0
    rows[3]["confidence"] = "high"
    rows[4]["unit_id"] = {"user": 42}
    answer = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == [rows[0]["prediction_id"]]
    reasons = {r["index"]: r["reasons"] for r in answer.json()["rejected"]}
    assert reasons == {
        1: ["served_by must be one of ['champion', 'challenger']"],
        2: ["model_version must be text or an integer"],
        3: ["confidence is null or not a number"],
        4: ["unit_id must be text or an integer"],
    }
    ids = [row["prediction_id"] for row in rows]
    outcomes = [
        {"prediction_id": ids[0], "actual_label": None},
        {"prediction_id": ids[0], "actual_label": ["yes"]},
        {"prediction_id": 7, "actual_label": "yes"},
        {"prediction_id": ids[0], "actual_label": "yes", "outcome_at": "last tuesday"},
        {"prediction_id": ids[0], "actual_label": "yes", "outcome_at": {"at": 5}},
        {"prediction_id": ids[0], "actual_label": "yes"},
    ]
    answer = client.post(f"{API}/models/churn/outcomes", headers=auth, json={"outcomes": outcomes})
    assert answer.status_code == 200, answer.text
    assert answer.json()["attached"] == [ids[0]]
    assert [r["reasons"] for r in answer.json()["rejected"]] == [
        ["actual_label is missing"],
        ["actual_label not in classes ['no', 'yes']"],
        ["prediction_id is not a UUID"],
        ["outcome_at is not a time (ISO 8601 text or Unix seconds)"],
        ["outcome_at is not a time (ISO 8601 text or Unix seconds)"],
    ]


def test_an_id_repeated_in_a_batch_is_logged_once(client, auth, model_cfg, database_url):
    rows = prediction_rows(model_cfg, 3, seed=10)
    rows[2]["prediction_id"] = rows[0]["prediction_id"]
    answer = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == [rows[0]["prediction_id"], rows[1]["prediction_id"]]
    assert body["rejected"] == [
        {
            "index": 2,
            "prediction_id": rows[0]["prediction_id"],
            "reasons": ["prediction_id repeats that of index 0, which is logged"],
        }
    ]
    assert len(_logged(database_url, [rows[0]["prediction_id"]])) == 1


def test_a_repeated_batch_is_a_no_op(client, auth, model_cfg, database_url):
    rows = prediction_rows(model_cfg, 3, seed=2)
    first = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    flipped = {"no": "yes", "yes": "no"}
    changed = [{**row, "predicted_label": flipped[row["predicted_label"]]} for row in rows]
    again = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": changed})
    assert (first.json()["logged"], again.json()["logged"]) == (3, 0)
    assert again.json()["repeated"] == 3
    assert again.json()["accepted"] == [row["prediction_id"] for row in rows]
    logged = _logged(database_url, [row["prediction_id"] for row in rows])
    assert {pid: values[0] for pid, values in logged.items()} == {
        row["prediction_id"]: row["predicted_label"] for row in rows
    }


def test_malformed_bodies_are_422_naming_the_place(client, auth, model_cfg):
    rows = prediction_rows(model_cfg, 2)
    answer = client.post(
        f"{API}/models/churn/predictions", headers=auth, json={"rows": [rows[0], "a row"]}
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][-2:] == ["rows", 1]
    empty = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": []})
    assert empty.status_code == 422


def test_outcomes_first_wins_and_unknown_ids_come_back(client, auth, model_cfg, database_url):
    rows = prediction_rows(model_cfg, 3, seed=3)
    client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    ids = [row["prediction_id"] for row in rows]
    stranger = str(uuid.uuid4())
    early = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    first = client.post(
        f"{API}/models/churn/outcomes",
        headers=auth,
        json={
            "outcomes": [
                {"prediction_id": ids[0], "actual_label": "yes"},
                {"prediction_id": stranger, "actual_label": "no"},
                {"prediction_id": ids[1], "actual_label": "perhaps"},
                {"prediction_id": ids[2], "actual_label": "no", "outcome_at": early},
            ]
        },
    ).json()
    assert first["attached"] == [ids[0]]
    assert first["unknown"] == [stranger]
    rejected = {r["index"]: r["reasons"] for r in first["rejected"]}
    assert rejected == {
        2: ["actual_label not in classes ['no', 'yes']"],
        3: ["outcome_at is before predicted_at"],
    }
    second = client.post(
        f"{API}/models/churn/outcomes",
        headers=auth,
        json={"outcomes": [{"prediction_id": ids[0], "actual_label": "no"}]},
    ).json()
    assert (second["attached"], second["already_labelled"]) == ([], [ids[0]])
    assert _logged(database_url, [ids[0]])[ids[0]][1] == "yes"
    # Another model's predictions are unknown to this one.
    other = client.post(
        f"{API}/models/{AB_MODEL}/outcomes",
        headers=auth,
        json={"outcomes": [{"prediction_id": ids[1], "actual_label": "no"}]},
    ).json()
    assert other["unknown"] == [ids[1]]


def test_feedback_is_validated_stored_once_and_unknown_ids_come_back(
    client, auth, model_cfg, database_url
):
    rows = prediction_rows(model_cfg, 1, seed=4)
    client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    pid = rows[0]["prediction_id"]
    bad = client.post(
        f"{API}/models/churn/feedback",
        headers=auth,
        json={
            "feedback": [
                {"prediction_id": pid, "rating": 6},
                {"prediction_id": pid},
                # a NUL made Postgres refuse the whole batch (500); a number or too long a
                # text was a 422 for it
                {"prediction_id": str(uuid.uuid4()), "rating": 3, "notes": "nul\u0000here"},
                {"prediction_id": str(uuid.uuid4()), "rating": 3, "notes": 42},
                {"prediction_id": str(uuid.uuid4()), "rating": 3, "notes": "x" * 4001},
            ]
        },
    )
    assert bad.status_code == 200, bad.text
    notes = "notes must be text of at most 4000 characters, without NUL"
    assert [r["reasons"] for r in bad.json()["rejected"]] == [
        ["rating must be an integer between 1 and 5"],
        ["rating must be an integer between 1 and 5"],
        [notes],
        [notes],
        [notes],
    ]
    stranger = str(uuid.uuid4())
    body = {
        "feedback": [
            {"prediction_id": pid, "rating": 2, "notes": "wrong for long-time customers"},
            {"prediction_id": stranger, "rating": 5},
        ]
    }
    first = client.post(f"{API}/models/churn/feedback", headers=auth, json=body).json()
    assert (first["recorded"], first["unknown"]) == ([pid], [stranger])
    again = client.post(f"{API}/models/churn/feedback", headers=auth, json=body).json()
    assert (again["recorded"], again["already_rated"]) == ([], [pid])
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT rating, comment FROM feedback WHERE prediction_id = %s", (pid,))
        assert cursor.fetchall() == [(2, "wrong for long-time customers")]


def test_assignment_is_the_split_routers_choice(
    client, auth, model_cfg, champion, tracking_uri, database_url
):
    v1 = register_copy(model_cfg, tracking_uri, name=AB_MODEL, source=champion.version)
    v2 = register_copy(model_cfg, tracking_uri, name=AB_MODEL, source=champion.version)
    registry = registry_client(tracking_uri)
    registry.set_registered_model_alias(AB_MODEL, CHAMPION, v1)
    units = [f"customer-{i}" for i in range(200)]
    alone = client.get(f"{API}/models/{AB_MODEL}/assignment?unit_id=u1", headers=auth).json()
    assert (alone["arm"], alone["model_version"], alone["test_id"]) == ("champion", v1, None)

    registry.set_registered_model_alias(AB_MODEL, CHALLENGER, v2)
    with transaction(database_url) as connection:
        test = request_test(
            connection,
            model_name=AB_MODEL,
            champion_version=v1,
            challenger_version=v2,
            stages=[30, 100],
            retraining_run_id=None,
            reason="collect api test",
        )
        update_test(connection, test.id, status="running", traffic_percent=30)
    router = SplitRouter(live_split(database_url, AB_MODEL), ttl=0)
    answers = [
        client.get(f"{API}/models/{AB_MODEL}/assignment", params={"unit_id": u}, headers=auth)
        for u in units
    ]
    arms = [answer.json()["arm"] for answer in answers]
    assert arms == [router.arm(u) for u in units]
    assert 0 < arms.count("challenger") < len(units)
    versions = {a.json()["arm"]: a.json()["model_version"] for a in answers}
    assert versions == {"champion": v1, "challenger": v2}
    again = client.get(f"{API}/models/{AB_MODEL}/assignment?unit_id={units[0]}", headers=auth)
    assert again.json()["arm"] == arms[0]
    detail = client.get(f"{API}/models/{AB_MODEL}", headers=auth).json()
    assert detail["live_split"]["traffic_percent"] == 30
    assert detail["live_split"]["challenger_version"] == v2


def test_json_the_log_cannot_hold_is_422_and_a_bad_time_rejects_its_row(client, auth, model_cfg):
    rows = prediction_rows(model_cfg, 2, seed=20)
    body = json.dumps({"rows": rows}).replace('"latency_ms": 3.5', '"latency_ms": 1e400', 1)
    headers = {**auth, "Content-Type": "application/json"}
    answer = client.post(f"{API}/models/churn/predictions", headers=headers, content=body)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "rows", 0, "latency_ms"]
    rows[0]["surprise"] = 1
    unknown = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    assert unknown.status_code == 422 and "surprise" in unknown.json()["detail"][0]["msg"]
    del rows[0]["surprise"]
    rows[1]["predicted_at"] = "last tuesday"
    answer = client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    assert answer.json()["accepted"] == [rows[0]["prediction_id"]]
    assert answer.json()["rejected"][0]["reasons"] == ["predicted_at is null or not a timestamp"]


def test_each_request_is_one_usage_event(client, auth, model_cfg, champion, database_url):
    rows = prediction_rows(model_cfg, 5, seed=21)
    rows[0]["predicted_label"] = "maybe"
    client.post(f"{API}/models/churn/predictions", headers=auth, json={"rows": rows})
    outcomes = [
        {"prediction_id": rows[1]["prediction_id"], "actual_label": "yes"},
        {"prediction_id": str(uuid.uuid4()), "actual_label": "no"},
    ]
    client.post(f"{API}/models/churn/outcomes", headers=auth, json={"outcomes": outcomes})
    client.get(f"{API}/models/churn/assignment?unit_id=usage-unit", headers=auth)
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_type, unit_id, payload FROM usage_events WHERE model_name = 'churn'"
            " ORDER BY id DESC LIMIT 3"
        )
        exposure, outcome, predictions = cursor.fetchall()
    user = next(iter(json.loads((Path(os.environ["AIRFLOW_HOME"]) / "passwords.json").read_text())))
    assert predictions[0] == "predictions"
    assert predictions[2] == {
        "sender": user,
        "rows": 5,
        "accepted": 4,
        "rejected": 1,
        "logged": 4,
        "repeated": 0,
    }
    assert outcome[0] == "outcomes"
    assert {k: outcome[2][k] for k in ("rows", "accepted", "unknown")} == {
        "rows": 2,
        "accepted": 1,
        "unknown": 1,
    }
    assert exposure[:2] == ("exposure", "usage-unit")
    assert (exposure[2]["arm"], exposure[2]["model_version"]) == ("champion", str(champion.version))
    usage = client.get(f"{API}/models/churn", headers=auth).json()["usage"]
    counts = {c["kind"]: c for c in usage["counts"]}
    assert counts["predictions"]["rejected"] >= 1 and counts["exposure"]["events"] >= 1
    assert usage["exposures"]["champion"][str(champion.version)] >= 1


def test_a_rows_arm_is_the_one_serving_its_version(client, auth, model_cfg, database_url):
    """README's example sent no served_by: the challenger's predictions were stored as the
    champion's and counted in neither arm (finding 4). A contradicting arm is corrected: while a
    promotion completes the assignment already names the new champion's version."""
    with transaction(database_url) as connection:
        test = live_test(connection, AB_MODEL, ACTIVE)
        if test is None:
            test = request_test(
                connection,
                model_name=AB_MODEL,
                champion_version="41",
                challenger_version="42",
                stages=[50, 100],
                retraining_run_id=None,
                reason="collect arm test",
            )
            update_test(connection, test.id, status="running", traffic_percent=50)
    champion, challenger = test.champion_version, test.challenger_version
    at = datetime.now(UTC) - timedelta(days=3, microseconds=217)
    rows = prediction_rows(model_cfg, 4, seed=30, at=at)
    rows[0]["model_version"] = challenger
    rows[1]["model_version"] = champion
    rows[2].update(model_version=champion, served_by="challenger")
    rows[3].update(model_version=challenger, served_by="champion")
    answer = client.post(f"{API}/models/{AB_MODEL}/predictions", headers=auth, json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected"] == []  # a contradicting arm is corrected, not lost
    ids = [row["prediction_id"] for row in rows]
    assert {pid: values[2] for pid, values in _logged(database_url, ids).items()} == {
        ids[0]: "challenger",
        ids[1]: "champion",
        ids[2]: "champion",
        ids[3]: "challenger",
    }
    # A row stored before (or by a path that could not tell) keeps counting for its version.
    window = ArmWindow(AB_MODEL, champion, challenger, at, at + timedelta(seconds=1))
    with transaction(database_url) as connection:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE prediction_log SET served_by = 'champion' WHERE prediction_id = %s",
                (ids[0],),
            )
        totals = arm_totals(connection, window)
    assert {arm: t.predictions for arm, t in totals.items()} == {"champion": 2, "challenger": 2}
