"""Performance while outcomes are late: confidence-based performance estimation (CBPE).

With calibrated probabilities (``relearn.training.calibration``) a prediction made with
confidence ``c`` is right with probability ``c``, so the expected accuracy of a window is
the mean of its confidences, before a single outcome is known (NannyML's CBPE for accuracy).
Its standard error is ``sqrt(sum c (1 - c)) / n``. The estimate sees what changes the
confidences: inputs moving to where the model is unsure (covariate shift). It cannot see
a concept shift (the same inputs, other right answers): only outcomes reveal that, which is
what the realised-accuracy check (``relearn.drift.performance``) is for.

Once outcomes arrive the same window also says whether the confidences can be trusted:
``ece`` is the calibration error on the labelled rows, compared with ``MAX_ECE``.

``estimate_window`` and ``judge`` are pure; ``estimate_versions`` loads the champion's and
the challenger's windows itself, for callers outside the drift check (the health check).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from relearn.drift.reference import MissingProfileError, load_profile
from relearn.drift.window import ACTUAL, CONFIDENCE, PREDICTED, load_window
from relearn.registry import CHALLENGER, CHAMPION, alias_version, registry_client
from relearn.services import NoChampionError
from relearn.store.db import transaction
from relearn.training.calibration import ece_of

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.services import Services

# An estimate this many standard errors below the reference (one-sided p < 0.01) counts.
Z_DECAY = 2.33
# Calibration error on new labels above which the estimate is flagged as untrustworthy.
MAX_ECE = 0.05


@dataclass(frozen=True)
class PerformanceEstimate:
    """One version's estimated and (where outcomes are in) realised accuracy over a window.

    ``estimated_accuracy`` is CBPE over all ``rows``; ``estimated_on_labelled`` is CBPE over
    the ``labelled_rows`` only, the figure to hold against ``realised_accuracy`` (the same
    rows). ``decayed`` is set by ``judge``.
    """

    role: str
    version: str
    rows: int
    estimated_accuracy: float | None
    standard_error: float | None
    labelled_rows: int
    realised_accuracy: float | None
    estimated_on_labelled: float | None
    ece: float | None
    miscalibrated: bool
    decayed: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_window(
    frame: pd.DataFrame, *, role: str, version: str, min_rows: int, min_labelled_rows: int
) -> PerformanceEstimate:
    """CBPE of a window (``relearn.drift.window`` columns) and, on its labelled rows, the
    realised accuracy and calibration error. Below ``min_rows`` (``min_labelled_rows``)
    the estimate (the realised figures) is None."""
    confidence = frame[CONFIDENCE].to_numpy(dtype=np.float64)
    usable = np.isfinite(confidence)
    confidence = confidence[usable]
    rows = int(confidence.size)
    estimated = standard_error = None
    if rows >= min_rows:
        estimated = float(confidence.mean())
        standard_error = math.sqrt(float((confidence * (1 - confidence)).sum())) / rows
    actual = frame[ACTUAL].to_numpy(dtype=object)[usable]
    predicted = frame[PREDICTED].to_numpy(dtype=object)[usable]
    labelled = frame[ACTUAL].notna().to_numpy()[usable]
    n_labelled = int(labelled.sum())
    realised = on_labelled = ece = None
    if n_labelled >= min_labelled_rows:
        correct = predicted[labelled] == actual[labelled]
        realised = float(correct.mean())
        on_labelled = float(confidence[labelled].mean())
        ece = ece_of(confidence[labelled], correct)
    return PerformanceEstimate(
        role=role,
        version=version,
        rows=rows,
        estimated_accuracy=estimated,
        standard_error=standard_error,
        labelled_rows=n_labelled,
        realised_accuracy=realised,
        estimated_on_labelled=on_labelled,
        ece=ece,
        miscalibrated=ece is not None and ece > MAX_ECE,
    )


def judge(
    estimate: PerformanceEstimate, reference_accuracy: float | None, *, max_drop: float
) -> PerformanceEstimate:
    """``estimate`` with ``decayed`` set: the estimated accuracy is at least ``max_drop``
    below the reference and ``Z_DECAY`` standard errors below it."""
    if estimate.estimated_accuracy is None or estimate.standard_error is None:
        return _with(estimate, False, f"{estimate.rows} rows with a confidence: no estimate")
    if reference_accuracy is None:
        return _with(estimate, False, "no reference accuracy")
    drop = reference_accuracy - estimate.estimated_accuracy
    z = drop / estimate.standard_error if estimate.standard_error > 0 else math.inf
    decayed = drop >= max_drop and z >= Z_DECAY
    reason = (
        f"estimated accuracy {estimate.estimated_accuracy:.3f} "
        f"(± {estimate.standard_error:.3f}) vs reference {reference_accuracy:.3f} "
        f"(drop {drop:+.3f}, limit {max_drop:.3f}) on {estimate.rows} rows"
    )
    return _with(estimate, decayed, reason)


def _with(estimate: PerformanceEstimate, decayed: bool, reason: str) -> PerformanceEstimate:
    return PerformanceEstimate(**{**asdict(estimate), "decayed": decayed, "reason": reason})


def estimate_versions(
    services: Services, model_cfg: ModelConfig, *, now: datetime, window_hours: int | None = None
) -> list[PerformanceEstimate]:
    """The champion's and (during an A/B test) the challenger's estimates over the last
    ``window_hours`` (default ``drift.window_hours``) before ``now``, each judged against
    the reference accuracy it was registered with.

    This is the function the health check calls to show estimated beside realised accuracy.

    :raises NoChampionError: the model has no champion.
    """
    since = now - timedelta(hours=window_hours or model_cfg.drift.window_hours)
    client = registry_client(services.tracking_uri)
    champion = alias_version(client, model_cfg.name, CHAMPION)
    if champion is None:
        raise NoChampionError(model_cfg.name)
    estimates = [version_estimate(services, model_cfg, CHAMPION, str(champion.version), since, now)]
    challenger = challenger_estimate(services, model_cfg, since, now)
    return estimates if challenger is None else [*estimates, challenger]


def challenger_estimate(
    services: Services, model_cfg: ModelConfig, since: datetime, until: datetime
) -> PerformanceEstimate | None:
    """The challenger's judged estimate over ``[since, until)``; None without a challenger."""
    challenger = alias_version(registry_client(services.tracking_uri), model_cfg.name, CHALLENGER)
    if challenger is None:
        return None
    version = str(challenger.version)
    return version_estimate(services, model_cfg, CHALLENGER, version, since, until)


def version_estimate(
    services: Services,
    model_cfg: ModelConfig,
    role: str,
    version: str,
    since: datetime,
    until: datetime,
) -> PerformanceEstimate:
    """One version's estimate over its predictions of ``[since, until)``, judged against
    the reference accuracy of its profile (none: not judged)."""
    drift = model_cfg.drift
    with transaction(services.database_url) as connection:
        frame = load_window(connection, model_cfg, version, since=since, until=until)
    try:
        reference_accuracy = load_profile(
            services.tracking_uri, model_cfg.name, version
        ).reference_accuracy
    except MissingProfileError:
        reference_accuracy = None
    estimate = estimate_window(
        frame,
        role=role,
        version=version,
        min_rows=drift.min_rows,
        min_labelled_rows=drift.min_labelled_rows,
    )
    return judge(estimate, reference_accuracy, max_drop=drift.max_accuracy_drop)
