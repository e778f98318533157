"""``relearn ingest``: backfills from files keep the good rows and name the bad ones."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from relearn.collect import ingest
from relearn.collect.ingest import IngestKind, ingest_file
from relearn.store.db import transaction
from tests.conftest import run_cli
from tests.integration.collect_rows import prediction_rows

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def _flat(rows: list[dict]) -> pd.DataFrame:
    """Rows as a file holds them: one column per feature."""
    flat = [{**{k: v for k, v in r.items() if k != "features"}, **r["features"]} for r in rows]
    return pd.DataFrame(flat)


def _labels(database_url: str, ids: list[str]) -> dict[str, str | None]:
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT prediction_id::text, actual_label FROM prediction_log"
            " WHERE prediction_id = ANY(%s::uuid[])",
            (ids,),
        )
        return dict(cursor.fetchall())


def test_ingest_keeps_good_rows_and_reports_bad_ones_by_row(
    stack, model_cfg, database_url, tmp_path: Path
):
    rows = prediction_rows(model_cfg, 50, seed=11)
    frame = _flat(rows)
    frame.loc[3, "region"] = "atlantis"
    frame.loc[7, "confidence"] = 1.5
    frame.loc[8, "monthly_charges"] = None
    frame.loc[9, "predicted_at"] = "yesterday-ish"
    path = tmp_path / "history.csv"
    frame.to_csv(path, index=False)
    rejected_out = tmp_path / "rejected.jsonl"

    result = run_cli(
        "ingest", "predictions", str(path), "--model", "churn", "--rejected-out", str(rejected_out)
    )
    assert result.returncode == 1, result.stderr
    assert "50 rows: 46 logged, 0 already in the log, 4 rejected" in result.stdout
    categories = "['north', 'south', 'east', 'west']"
    assert f"row 4: feature 'region' not in categories {categories}" in result.stderr
    assert "row 8: confidence outside [0, 1]" in result.stderr
    assert "row 9: feature 'monthly_charges' is null" in result.stderr
    assert "row 10: predicted_at is null or not a timestamp" in result.stderr
    written = [json.loads(line) for line in rejected_out.read_text().splitlines()]
    assert [bad["row"] for bad in written] == [4, 8, 9, 10]
    ids = list(frame["prediction_id"])
    logged = _labels(database_url, ids)
    assert set(logged) == set(ids) - {ids[3], ids[7], ids[8], ids[9]}

    again = run_cli("ingest", "predictions", str(path), "--model", "churn")
    assert "46 already in the log" in again.stdout

    outcomes = pd.DataFrame(
        {
            "prediction_id": [ids[0], ids[1], ids[3], str(uuid.uuid4())],
            "actual_label": ["yes", "nope", "no", "no"],
        }
    )
    outcomes_path = tmp_path / "outcomes.jsonl"
    outcomes.to_json(outcomes_path, orient="records", lines=True)
    result = run_cli("ingest", "outcomes", str(outcomes_path), "--model", "churn")
    assert result.returncode == 1
    assert "4 rows: 1 attached, 0 already labelled, 3 rejected" in result.stdout
    assert "line 2: actual_label not in classes ['no', 'yes']" in result.stderr
    assert "line 3: no prediction of model 'churn' has this id" in result.stderr
    assert _labels(database_url, [ids[0]]) == {ids[0]: "yes"}


def test_parquet_with_a_features_column_and_model_names(stack, model_cfg, database_url, tmp_path):
    rows = prediction_rows(model_cfg, 10, seed=12)
    frame = pd.DataFrame(rows)
    frame["features"] = [json.dumps(f) for f in frame["features"]]
    frame["model_name"] = ["churn"] * 9 + ["unheard_of"]
    path = tmp_path / "history.parquet"
    frame.to_parquet(path)
    result = run_cli("ingest", "predictions", str(path))
    assert "10 rows: 9 logged" in result.stdout, result.stderr
    assert "row 10: unknown model (configured: churn" in result.stderr


def test_a_file_of_an_unknown_type_is_one_line(stack, tmp_path):
    path = tmp_path / "history.xlsx"
    path.write_text("x")
    result = run_cli("ingest", "predictions", str(path), "--model", "churn")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "unsupported file type '.xlsx'" in result.stderr
    folder = run_cli("ingest", "predictions", str(tmp_path), "--model", "churn")
    assert folder.returncode == 1
    directory = f"{tmp_path} is a directory: ingest its .csv, .parquet or .jsonl files one by one"
    assert folder.stderr == f"relearn: {directory}\n"
    headless = tmp_path / "no_times.csv"
    headless.write_text(
        f"prediction_id,model_version,predicted_label,confidence\n{uuid.uuid4()},1,no,0.9\n"
    )
    result = run_cli("ingest", "predictions", str(headless), "--model", "churn")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"relearn: {headless}: no column 'predicted_at': predictions files"
    )


def test_a_file_of_many_chunks_keeps_file_order_and_skips_known_ids(
    stack, config, model_cfg, database_url, tmp_path: Path, monkeypatch
):
    """Chunks are screened while earlier ones are written: bad rows still come back in file
    order with their row numbers, and ids already in the log (some in every chunk, so the
    COPY meets a known id mid-chunk) are left as they are while the new ones are logged."""
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 7)
    rows = prediction_rows(model_cfg, 40, seed=13)
    frame = _flat(rows)
    frame["model_name"] = "churn"
    frame.loc[[2, 10, 15, 31], "model_name"] = "unheard_of"
    frame.loc[[9, 22], "confidence"] = -1.0
    already = frame.iloc[::3]
    already.drop(columns="model_name").to_csv(tmp_path / "first.csv", index=False)
    first = ingest_file(
        database_url, config, IngestKind.PREDICTIONS, tmp_path / "first.csv", model="churn"
    )
    path = tmp_path / "all.csv"
    frame.to_csv(path, index=False)

    report = ingest_file(database_url, config, IngestKind.PREDICTIONS, path)

    assert [bad.row for bad in report.bad] == [3, 10, 11, 16, 23, 32]
    assert [bad.model for bad in report.bad] == [None, "churn", None, None, "churn", None]
    assert (first.logged, report.rows) == (13, 40)  # 14 rows, row 10 rejected
    # 40 rows - 6 bad = 34 good; rows 1, 4, 7, ... were logged before (row 10 among them was
    # rejected both times; row 16 was logged then and is of an unknown model now)
    known = {position for position in range(0, 40, 3)} - {9, 15}
    assert (report.logged, report.repeated) == (34 - len(known), len(known))
    ids = list(frame["prediction_id"])
    good = set(ids) - {ids[i] for i in (2, 9, 10, 15, 22, 31)}
    assert set(_labels(database_url, ids)) == good | {ids[15]}


def test_ids_repeated_across_chunks_in_crossed_order_are_logged_once(
    stack, config, model_cfg, database_url, tmp_path: Path, monkeypatch
):
    """Chunks written side by side that repeat each other's ids in reverse order: each id is
    logged once and counted once as repeated (when the two writes overlap, Postgres breaks a
    deadlock and the aborted chunk is written again; the overlap depends on timing)."""
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 2_000)
    frame = _flat(prediction_rows(model_cfg, 2_000, seed=14))
    path = tmp_path / "twice.csv"
    pd.concat([frame, frame.iloc[::-1]]).to_csv(path, index=False)

    report = ingest_file(database_url, config, IngestKind.PREDICTIONS, path, model="churn")

    assert (report.rows, report.logged, report.repeated, report.bad) == (4_000, 2_000, 2_000, [])
    assert set(_labels(database_url, list(frame["prediction_id"]))) == set(frame["prediction_id"])


def test_a_bad_number_in_a_csv_rejects_only_its_row(stack, model_cfg, database_url, tmp_path):
    """A CSV cell has no type: one cell that is not a number turns its column into text for
    pandas; the other rows' numbers are still numbers (logged, and stored as numbers)."""
    frame = _flat(prediction_rows(model_cfg, 6, seed=15))
    for name in ("latency_ms", "monthly_charges", "confidence"):
        frame[name] = frame[name].astype(object)
    frame.loc[1, "latency_ms"] = "fast"
    frame.loc[3, "monthly_charges"] = "lots"
    frame.loc[4, "confidence"] = "sure"
    path = tmp_path / "cells.csv"
    frame.to_csv(path, index=False)

    result = run_cli("ingest", "predictions", str(path), "--model", "churn")

    assert "6 rows: 3 logged, 0 already in the log, 3 rejected" in result.stdout, result.stderr
    assert "row 2: latency_ms must be a number from 0 to 3.4e38" in result.stderr
    assert "row 4: feature 'monthly_charges' is not numeric" in result.stderr
    assert "row 5: confidence is null or not a number" in result.stderr
    ids = [frame["prediction_id"][i] for i in (0, 2, 5)]
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT jsonb_typeof(features->'monthly_charges'), latency_ms FROM prediction_log"
            " WHERE prediction_id = ANY(%s::uuid[])",
            (ids,),
        )
        assert cursor.fetchall() == [("number", 3.5)] * 3


def test_a_malformed_json_line_is_a_bad_row(stack, model_cfg, database_url, tmp_path):
    """One line that is not JSON (or not an object) is that line's error, named by its line
    number; the file's other lines are ingested. A file no line of which is JSON fails."""
    rows = prediction_rows(model_cfg, 5, seed=16)
    lines = [json.dumps(row) for row in rows]
    lines[1] = lines[1][:40] + "}}"
    lines[3] = "[1, 2]"
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")

    result = run_cli("ingest", "predictions", str(path), "--model", "churn")

    assert result.returncode == 1
    assert "5 rows: 3 logged, 0 already in the log, 2 rejected" in result.stdout, result.stderr
    assert "line 2: not valid JSON: " in result.stderr
    assert "line 5: not a JSON object" in result.stderr  # line 4 is blank
    ids = [rows[i]["prediction_id"] for i in (0, 2, 4)]
    assert set(_labels(database_url, [row["prediction_id"] for row in rows])) == set(ids)

    csv = tmp_path / "not_lines.jsonl"
    _flat(rows).to_csv(csv, index=False)
    result = run_cli("ingest", "predictions", str(csv), "--model", "churn")
    assert result.returncode == 1
    assert result.stderr.startswith(f"relearn: {csv}: no row could be read (line 1: not valid JSON")
    assert result.stderr.count("\n") == 1


def test_a_csv_line_with_too_many_fields_is_a_bad_row(stack, model_cfg, database_url, tmp_path):
    rows = _flat(prediction_rows(model_cfg, 4, seed=17))
    lines = rows.to_csv(index=False).splitlines()
    lines[2] += ",surplus"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")

    result = run_cli("ingest", "predictions", str(path), "--model", "churn")

    assert "4 rows: 3 logged, 0 already in the log, 1 rejected" in result.stdout, result.stderr
    fields = len(rows.columns)
    assert f"row 2: line 3: expected {fields} fields, saw {fields + 1}" in result.stderr
    ids = [rows["prediction_id"][i] for i in (0, 2, 3)]
    assert set(_labels(database_url, list(rows["prediction_id"]))) == set(ids)


def test_a_file_that_cannot_be_read_is_one_line_naming_it(stack, tmp_path):
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"prediction_id,region\n1,K\xf6ln\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    for path in (latin1, empty, broken):
        result = run_cli("ingest", "predictions", str(path), "--model", "churn")
        assert result.returncode == 1
        assert result.stderr.startswith(f"relearn: {path}: cannot be read at all ("), result.stderr
        assert result.stderr.count("\n") == 1
        assert "save it as UTF-8 CSV, Parquet or JSON Lines" in result.stderr
