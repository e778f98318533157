"""Error analyses of real windows: a retraining run's holdout, a day of the prediction log.

Reads go through the project's window readers, which are total on rows other teams wrote
(the retraining holdout is the validated snapshot, quarantine done; the daily window is the
drift reader's, unsound rows left out and counted), so a hostile row is excluded, never a
crash. Results go to ``error_analyses`` (``relearn.store.analysis``) and, for a retraining
run, to its MLflow run as ``error_analysis/findings.json`` and ``reliability.svg``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from relearn.analysis.chart import reliability_svg
from relearn.analysis.report import AnalysisOptions, Findings, Predictions, Role, analyze
from relearn.drift.window import ACTUAL, CONFIDENCE, EXCLUDED, PREDICTED, load_window
from relearn.registry import CHAMPION, alias_version, model_uri, registry_client
from relearn.retraining.artifacts import load_registered_classifier
from relearn.retraining.options import recorded_window
from relearn.services import NoChampionError, utcnow
from relearn.store import abtests
from relearn.store import analysis as store
from relearn.store.db import transaction

if TYPE_CHECKING:
    import uuid

    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.services import Services
    from relearn.store.runs import RetrainingRun

log = logging.getLogger(__name__)

ARTIFACT_DIR = "error_analysis"


class Scope(StrEnum):
    RETRAINING_RUN = store.RETRAINING_RUN  # a run's holdout, the candidate compared
    DAILY = store.DAILY  # a day of labelled predictions, the live challenger compared


@dataclass(frozen=True)
class ErrorAnalysis:
    """One analysis of a model's champion: which rows, compared with what, and the findings."""

    model_name: str
    scope: Scope
    analysis_key: str
    champion_version: str | None
    compared_role: Role | None
    compared_version: str | None
    window_start: datetime | None
    window_end: datetime | None
    findings: Findings
    analysed_at: datetime
    retraining_run_id: uuid.UUID | None = None
    excluded_rows: int | None = None
    artifact_uri: str | None = None

    def to_row(self) -> store.AnalysisRow:
        findings = self.findings
        return store.AnalysisRow(
            model_name=self.model_name,
            scope=self.scope.value,
            analysis_key=self.analysis_key,
            retraining_run_id=self.retraining_run_id,
            champion_version=self.champion_version,
            compared_role=None if self.compared_role is None else self.compared_role.value,
            compared_version=self.compared_version,
            window_start=self.window_start,
            window_end=self.window_end,
            status=findings.status.value,
            rows=findings.rows,
            errors=findings.errors,
            error_rate=findings.error_rate,
            ece=None if findings.calibration is None else findings.calibration.ece,
            significant_segments=len(findings.segments),
            excluded_rows=self.excluded_rows,
            findings=findings.to_dict(),
            artifact_uri=self.artifact_uri,
            analysed_at=self.analysed_at,
        )

    @classmethod
    def from_row(cls, row: store.AnalysisRow) -> ErrorAnalysis:
        return cls(
            model_name=row.model_name,
            scope=Scope(row.scope),
            analysis_key=row.analysis_key,
            champion_version=row.champion_version,
            compared_role=None if row.compared_role is None else Role(row.compared_role),
            compared_version=row.compared_version,
            window_start=row.window_start,
            window_end=row.window_end,
            findings=Findings.from_dict(row.findings),
            analysed_at=row.analysed_at,
            retraining_run_id=row.retraining_run_id,
            excluded_rows=row.excluded_rows,
            artifact_uri=row.artifact_uri,
        )


def latest_analysis(
    services: Services, model_name: str, scope: Scope | None = None
) -> ErrorAnalysis | None:
    """The model's most recent analysis (of ``scope``, or either): what the page shows."""
    with transaction(services.database_url) as connection:
        rows = store.latest_analyses(connection, model_name, scope=scope and scope.value)
    return ErrorAnalysis.from_row(rows[0]) if rows else None


def save(services: Services, analysis: ErrorAnalysis) -> None:
    with transaction(services.database_url) as connection:
        store.save_analysis(connection, analysis.to_row())


def analyze_retraining_run(
    services: Services,
    model_cfg: ModelConfig,
    run: RetrainingRun,
    holdout: pd.DataFrame,
    truth: list[str],
    candidate_probabilities: np.ndarray,
) -> ErrorAnalysis | None:
    """The pinned champion's errors on the run's holdout, each segment with the candidate's
    error on the same rows; stored and logged to the run's MLflow run.

    Advisory: it never fails the retraining run it explains. Any error is logged and the
    run goes on without an analysis (None); so is a run without a champion.
    """
    version = run.params.get("champion_version")
    if not version:
        log.info("%s: no champion pinned to run %s: no error analysis", model_cfg.name, run.id)
        return None
    try:
        champion = load_registered_classifier(
            services.tracking_uri, model_uri(model_cfg.name, version)
        )
        findings = analyze(
            model_cfg,
            _scored(model_cfg, holdout, truth, champion.predict_proba(holdout)),
            compared=(
                Role.CANDIDATE,
                _scored(model_cfg, holdout, truth, candidate_probabilities),
            ),
        )
        window_start, window_end = recorded_window(run.params)
        analysis = ErrorAnalysis(
            model_name=model_cfg.name,
            scope=Scope.RETRAINING_RUN,
            analysis_key=str(run.id),
            champion_version=str(version),
            compared_role=Role.CANDIDATE,
            compared_version=None,  # registered by publish, after this
            window_start=window_start,
            window_end=window_end,
            findings=findings,
            analysed_at=utcnow(),
            retraining_run_id=run.id,
            artifact_uri=_log_artifacts(services, run.mlflow_run_id, model_cfg.name, findings),
        )
        save(services, analysis)
    except Exception:
        # Advisory: a failed analysis must not fail (nor retry) the run's evaluation.
        log.exception(
            "%s: error analysis of run %s failed; the run goes on", model_cfg.name, run.id
        )
        return None
    log.info("%s: %s", model_cfg.name, describe(analysis))
    return analysis


def daily_analysis(
    services: Services,
    model_cfg: ModelConfig,
    *,
    until: datetime,
    hours: float = 24,
    analysis_key: str,
    options: AnalysisOptions | None = None,
) -> ErrorAnalysis:
    """The champion's labelled predictions of ``[until - hours, until)``, compared with the
    live A/B test's challenger on its own traffic of the same window (not stored).

    :raises NoChampionError: the model has no champion to analyse.
    """
    champion = alias_version(registry_client(services.tracking_uri), model_cfg.name, CHAMPION)
    if champion is None:
        raise NoChampionError(model_cfg.name)
    version, since = str(champion.version), until - timedelta(hours=hours)
    with transaction(services.database_url) as connection:
        live = abtests.live_test(connection, model_cfg.name)
        window = load_window(connection, model_cfg, version, since=since, until=until)
        challenger = live.challenger_version if live else None
        other = (
            load_window(connection, model_cfg, challenger, since=since, until=until)
            if challenger
            else None
        )
    compared = (Role.CHALLENGER, _labelled(model_cfg, other)) if other is not None else None
    return ErrorAnalysis(
        model_name=model_cfg.name,
        scope=Scope.DAILY,
        analysis_key=analysis_key,
        champion_version=version,
        compared_role=compared and compared[0],
        compared_version=challenger,
        window_start=since,
        window_end=until,
        findings=analyze(
            model_cfg, _labelled(model_cfg, window), compared=compared, options=options
        ),
        analysed_at=utcnow(),
        excluded_rows=int(window.attrs.get(EXCLUDED, 0)),
    )


def run_daily(
    services: Services, model_cfg: ModelConfig, *, until: datetime, analysis_key: str
) -> ErrorAnalysis:
    """``daily_analysis`` of the day before ``until``, stored under ``analysis_key``."""
    analysis = daily_analysis(services, model_cfg, until=until, analysis_key=analysis_key)
    save(services, analysis)
    log.info("%s: %s", model_cfg.name, describe(analysis))
    return analysis


def describe(analysis: ErrorAnalysis) -> str:
    """One line for logs: volume, error rate, segments found, the first suggestion."""
    f = analysis.findings
    if f.error_rate is None:
        return f"{analysis.scope.value} analysis: no labelled rows"
    head = (
        f"{analysis.scope.value} analysis of v{analysis.champion_version}: {f.status.value}, "
        f"error {f.error_rate:.3f} on {f.rows:,} rows, {len(f.segments)} significant segment(s)"
        f" of {f.tested_segments:,} tested"
    )
    return f"{head}; 1. {f.suggestions[0].text}" if f.suggestions else head


def _scored(
    model_cfg: ModelConfig, features: pd.DataFrame, truth: list[str], probabilities: np.ndarray
) -> Predictions:
    """Predictions of a classifier from its probabilities (columns in ``classes`` order)."""
    classes = np.asarray(model_cfg.classes, dtype=object)
    return Predictions(
        features=features,
        actual=list(truth),
        predicted=classes[probabilities.argmax(axis=1)].tolist(),
        confidence=probabilities.max(axis=1),
    )


def _labelled(model_cfg: ModelConfig, window: pd.DataFrame) -> Predictions:
    """The rows of a drift window whose outcome is known."""
    labelled = window[window[ACTUAL].notna()]
    return Predictions(
        features=labelled[[f for f in model_cfg.feature_names if f in labelled.columns]],
        actual=labelled[ACTUAL].astype(str).tolist(),
        predicted=labelled[PREDICTED].astype(str).tolist(),
        confidence=labelled[CONFIDENCE].to_numpy(dtype=np.float64),
    )


def _log_artifacts(
    services: Services, mlflow_run_id: str | None, model_name: str, findings: Findings
) -> str | None:
    """The findings (JSON) and the reliability diagram (SVG) on the run's MLflow run."""
    if not mlflow_run_id:
        return None
    client = registry_client(services.tracking_uri)
    client.log_dict(mlflow_run_id, findings.to_dict(), f"{ARTIFACT_DIR}/findings.json")
    if findings.calibration is not None:
        svg = reliability_svg(findings.calibration, f"{model_name}: champion on the holdout")
        client.log_text(mlflow_run_id, svg, f"{ARTIFACT_DIR}/reliability.svg")
    return f"{client.get_run(mlflow_run_id).info.artifact_uri}/{ARTIFACT_DIR}"
