"""Handler of ``analyze``: print an error analysis of a model's champion."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from relearn.analysis.run import daily_analysis, latest_analysis
from relearn.config import load_config
from relearn.services import Services, utcnow
from relearn.settings import load_settings

if TYPE_CHECKING:
    import argparse

    from relearn.analysis.run import ErrorAnalysis


def analyze(args: argparse.Namespace) -> int:
    model_cfg = load_config(args.config).model(args.model)
    services = Services.from_settings(load_settings())
    if args.latest:
        analysis = latest_analysis(services, model_cfg.name)
        if analysis is None:
            raise ValueError(
                f"'{model_cfg.name}' has no stored error analysis yet: run the error_analysis "
                "DAG or a retraining, or drop --latest to compute one now"
            )
    else:
        until = _time("--until", args.until) if args.until else utcnow()
        since = _time("--since", args.since) if args.since else None
        hours = 24.0 if since is None else (until - since).total_seconds() / 3600
        if hours <= 0:
            raise ValueError(f"--since {args.since} is not before --until {args.until or 'now'}")
        analysis = daily_analysis(services, model_cfg, until=until, hours=hours, analysis_key="cli")
    if args.json:
        print(json.dumps(analysis.findings.to_dict(), indent=2))
    else:
        print(render(analysis, top=args.top))
    return 0


def _time(option: str, text: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{option} {text!r} is not an ISO 8601 time (2026-05-01T00:00)") from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def render(analysis: ErrorAnalysis, *, top: int = 10) -> str:
    """The analysis for a terminal: the window, the worst segments, confusion, suggestions."""
    f = analysis.findings
    start = analysis.window_start.isoformat(timespec="minutes") if analysis.window_start else "?"
    end = analysis.window_end.isoformat(timespec="minutes") if analysis.window_end else "?"
    compared = (
        f", compared with the {analysis.compared_role.value}"
        f"{f' v{analysis.compared_version}' if analysis.compared_version else ''}"
        if analysis.compared_role
        else ""
    )
    lines = [
        f"{analysis.model_name} v{analysis.champion_version} ({analysis.scope.value} "
        f"[{start}, {end}){compared}): {f.status.value}",
    ]
    if f.error_rate is None:
        return "\n".join([*lines, "no labelled predictions in the window"])
    excluded = (
        f", {analysis.excluded_rows:,} unsound rows left out" if analysis.excluded_rows else ""
    )
    lines.append(f"error {f.error_rate:.3f} on {f.rows:,} labelled rows{excluded}")
    if f.calibration is not None:
        lines.append(f"expected calibration error {f.calibration.ece:.3f}")
    if f.segments:
        lines.append(
            f"\nsegments above the overall error ({len(f.segments)} of {f.tested_segments:,} "
            f"tested, false discovery rate {f.alpha:g}, >= {f.min_support} rows):"
        )
        for s in f.segments[:top]:
            other = (
                f"  {s.compared.role} {s.compared.error_rate:.2f}"
                if s.compared and s.compared.error_rate is not None
                else ""
            )
            lines.append(
                f"  {s.error_rate:5.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}] x{s.lift:<4.1f} "
                f"{s.rows:>8,} rows  q={s.q_value:<8.2g} {s.description}{other}"
            )
    if f.confusion:
        lines.append("\nconfusion (true -> predicted):")
        lines += [
            f"  {p.actual} -> {p.predicted}: {p.count:,} ({p.share_of_errors:.0%} of the errors)"
            for p in f.confusion[:5]
        ]
    if f.suggestions:
        lines.append("\nsuggestions:")
        lines += [f"  {s.rank}. {s.text}" for s in f.suggestions]
    return "\n".join(lines)
