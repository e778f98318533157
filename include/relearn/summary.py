"""What happened, read back from the databases and the registry (never from intentions)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from relearn.registry import list_versions, registry_client
from relearn.store.db import transaction
from relearn.store.predictions import accuracy_by_day, count_predictions
from relearn.store.summary import read_sections

if TYPE_CHECKING:
    from relearn.services import Services


def collect_summary(services: Services, model_names: list[str]) -> dict:
    """A JSON-serialisable picture of the current state of ``model_names``."""
    with transaction(services.database_url) as connection:
        summary: dict[str, Any] = {
            "predictions_logged": count_predictions(connection, model_names),
            "accuracy_by_day": accuracy_by_day(connection, model_names),
            **read_sections(connection, model_names),
        }
    client = registry_client(services.tracking_uri)
    summary["model_versions"] = [
        {k: v[k] for k in ("name", "version", "aliases")}
        for name in model_names
        for v in list_versions(client, name)
    ]
    return json.loads(json.dumps(summary, default=str))


def render_summary(summary: dict) -> str:
    """The summary as a person reads it in a terminal."""
    lines = [f"Predictions logged: {summary['predictions_logged']:,}", "", "Accuracy by day:"]
    lines += [
        f"  {row['model']:<12} {row['day']}  {row['accuracy']:.3f}  ({row['labelled']:,} labelled)"
        for row in summary["accuracy_by_day"]
    ] or ["  (no labelled predictions yet)"]
    lines += ["", "Model versions:"]
    lines += [
        f"  {v['name']} v{v['version']}  {', '.join(v['aliases']) or '-'}"
        for v in summary["model_versions"]
    ] or ["  (none registered)"]
    lines += ["", "Health checks:"]
    lines += [
        f"  {h['model_name']} {h['checked_at']}  {h['status']} (champion v{h['champion_version']})"
        for h in summary["health_checks"][-5:]
    ] or ["  (none)"]
    lines += ["", "Retraining runs:"]
    lines += [_run_line(run) for run in summary["runs"][-5:]] or ["  (none)"]
    lines.append("")
    lines += ["", "Retraining requests:"]
    lines += [
        f"  {r['model_name']} {r['priority']:<6} {r['status']:<10} run {r['retraining_run_id']}"
        f"  {r['reason'] or ''}"
        for r in summary["requests"][-5:]
    ] or ["  (none)"]
    lines += ["", "Drift reports:"]
    lines += [_drift_line(d) for d in summary["drift_reports"][-5:]] or ["  (none)"]
    lines += ["", "A/B tests:"]
    lines += [
        f"  {t['model_name']} v{t['challenger_version']} vs v{t['champion_version']}  "
        + (
            f"pending (starts at {t['stages'][0]} %)"
            if t["status"] == "pending"
            else f"{t['status']}: {' -> '.join(f'{p} %' for p in t['traffic_path'] or [])}"
            f"  ({t['reason']})"
        )
        for t in summary["ab_tests"][-5:]
    ] or ["  (none)"]
    lines += ["", "Alias history:"]
    lines += [
        f"  {h['model_name']} {h['changed_at']}  {h['alias']} -> "
        f"{'v' + h['version'] if h['version'] else '(removed)'}  by {h['changed_by']}: "
        f"{h['reason']}"
        for h in summary["alias_history"][-8:]
    ] or ["  (none)"]
    return "\n".join(lines)


def _drift_line(report: dict) -> str:
    score = "n/a" if report["score"] is None else f"{float(report['score']):.2f}"
    text = f"  {report['model_name']} v{report['model_version']} {report['time']}  "
    text += f"{report['verdict']:<17} score {score}"
    if report["accuracy"] is not None:
        text += (
            f", accuracy {float(report['accuracy']):.3f}"
            f" vs {float(report['reference_accuracy']):.3f}"
        )
    text += f" -> {report['action']}"
    if report["retraining_run_id"]:
        text += f" (run {report['retraining_run_id']})"
    return text


def _run_line(run: dict) -> str:
    outcome = f"v{run['model_version']}" if run["model_version"] else "no new version"
    if run["blessed"] is not None:
        outcome += (
            " blessed" if run["blessed"] else f" not blessed ({'; '.join(run['gate_reasons'])})"
        )
    if run["outcome"]:
        outcome += f" ({run['outcome']})"
    if run["error_message"]:
        outcome = f"error: {run['error_message'][:120]}"
    return f"  {run['model_name']} {run['source']:<15} {run['status']:<9} {outcome}  ({run['id']})"
