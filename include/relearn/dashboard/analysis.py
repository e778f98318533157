"""Error analysis: the model's latest daily analysis (where its champion errs most, which
classes it confuses, how calibrated it is, what to do about it).

Read in the page's snapshot through ``relearn.store.analysis`` (the same rows
``relearn.analysis.run.latest_analysis`` returns); the findings are decoded by the analysis
package's own ``Findings.from_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from relearn.analysis.report import Findings
from relearn.store import analysis as store

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection as Connection

    from relearn.analysis.calibration import ConfusionPair
    from relearn.analysis.segments import Segment

SEGMENTS_LIMIT = 10
CONFUSION_LIMIT = 5


@dataclass(frozen=True)
class SegmentView:
    """A segment erring significantly more than overall, with its 95 % interval."""

    description: str
    rows: int
    errors: int
    error_rate: float
    ci_low: float
    ci_high: float
    lift: float
    q_value: float
    compared_role: str | None  # the other model's error on the segment, when compared
    compared_error_rate: float | None


@dataclass(frozen=True)
class AnalysisView:
    scope: str
    analysis_key: str
    analysed_at: datetime
    champion_version: str | None
    compared_role: str | None
    compared_version: str | None
    window_start: datetime | None
    window_end: datetime | None
    status: str
    rows: int
    errors: int
    error_rate: float | None
    ece: float | None
    excluded_rows: int | None
    tested_segments: int
    segments: list[SegmentView]  # the worst first, at most SEGMENTS_LIMIT
    confusion: list[ConfusionPair]  # the most frequent first, at most CONFUSION_LIMIT
    suggestions: list[str]  # ranked, most important first


def _segment(found: Segment) -> SegmentView:
    compared = found.compared
    return SegmentView(
        description=found.description,
        rows=found.rows,
        errors=found.errors,
        error_rate=found.error_rate,
        ci_low=found.ci_low,
        ci_high=found.ci_high,
        lift=found.lift,
        q_value=found.q_value,
        compared_role=None if compared is None else compared.role,
        compared_error_rate=None if compared is None else compared.error_rate,
    )


def read_analysis(connection: Connection, model: str) -> AnalysisView | None:
    """The latest daily analysis of ``model``, or None before the first one."""
    rows = store.latest_analyses(connection, model, scope=store.DAILY)
    if not rows:
        return None
    row = rows[0]
    findings = Findings.from_dict(row.findings)
    return AnalysisView(
        scope=row.scope,
        analysis_key=row.analysis_key,
        analysed_at=row.analysed_at,
        champion_version=row.champion_version,
        compared_role=row.compared_role,
        compared_version=row.compared_version,
        window_start=row.window_start,
        window_end=row.window_end,
        status=row.status,
        rows=row.rows,
        errors=row.errors,
        error_rate=row.error_rate,
        ece=row.ece,
        excluded_rows=row.excluded_rows,
        tested_segments=findings.tested_segments,
        segments=[_segment(s) for s in findings.segments[:SEGMENTS_LIMIT]],
        confusion=findings.confusion[:CONFUSION_LIMIT],
        suggestions=[s.text for s in sorted(findings.suggestions, key=lambda s: s.rank)],
    )
