"""A previous champion made champion again when today's decays: a regime that returns brings
back the model that served it.

A seasonal change (weekday / weekend traffic, a promotion that comes and goes) makes the
champion promoted for the new regime decay when the old regime returns. Training yet another
model from the few rows since the decline is slow and learns the old regime back from
scratch, while the champion it replaced still knows it. So, before a decayed check asks for a
retraining, it scores up to ``drift.comeback_versions`` previous champions (the newest first,
from the alias history; versions no longer loadable, or trained on other features or classes,
are skipped) on the champion's labelled
rows since the decline: live rows none of them was trained on, where the champion's own
answers are the ones it served. A previous champion comes back when, on those rows, the gates
bless it against the decayed champion (``relearn.gates.decide``: the same bars and
``min_improvement`` as any candidate, at least ``min_eval_samples`` rows) *and* an exact
McNemar test of the paired answers says it is better at ``drift.comeback_significance``.

It is promoted at once (``relearn.abtest.champion.set_champion``, the reason in the alias
history), not A/B tested: the paired evidence on live traffic is what a test would gather,
only sooner (a test would wait the outcome delay again), the version served as champion
before (its latency and errors are known), and a version is A/B tested once only.

``choose`` is pure (the decision-quality bench replays it); ``find`` reads the versions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
from mlflow.exceptions import MlflowException

from relearn.abtest.stats import mcnemar_pvalue
from relearn.drift.window import ACTUAL, PREDICTED_AT
from relearn.evaluation import classification_metrics
from relearn.gates import decide
from relearn.registry import CHAMPION, model_uri
from relearn.retraining.artifacts import load_registered_classifier
from relearn.store import aliases
from relearn.store.db import transaction

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.drift.performance import PerformanceCheck
    from relearn.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comeback:
    """The previous champion to bring back, and the evidence."""

    version: str
    rows: int
    accuracy: float
    champion_accuracy: float
    pvalue: float

    @property
    def reason(self) -> str:
        return (
            f"comeback of v{self.version}, a previous champion: accuracy {self.accuracy:.3f} "
            f"vs the decayed champion's {self.champion_accuracy:.3f} on the {self.rows} "
            f"labelled rows since the decline (gates passed, McNemar p={self.pvalue:.2g})"
        )


def choose(
    model_cfg: ModelConfig,
    truth: Sequence[str],
    champion_proba: np.ndarray,
    previous: Mapping[str, np.ndarray],
) -> Comeback | None:
    """The most accurate previous version (``previous``: its probabilities on the rows of
    ``truth``) that the gates bless against the champion there and that McNemar's test finds
    better at ``drift.comeback_significance``; None when there is none."""
    if not previous or len(truth) < model_cfg.gates.min_eval_samples:
        return None
    classes = np.asarray(model_cfg.classes, dtype=object)
    actual = np.asarray(truth, dtype=object)
    champion = classification_metrics(truth, champion_proba, model_cfg.classes)
    champion_right = classes[champion_proba.argmax(axis=1)] == actual
    best: Comeback | None = None
    for version, proba in previous.items():
        metrics = classification_metrics(truth, proba, model_cfg.classes)
        decision = decide(metrics, champion, model_cfg.gates)
        right = classes[proba.argmax(axis=1)] == actual
        pvalue = mcnemar_pvalue(
            int(np.sum(right & ~champion_right)), int(np.sum(~right & champion_right))
        )
        significant = pvalue < model_cfg.drift.comeback_significance
        log.info(
            "%s: previous champion v%s on %d rows since the decline: accuracy %.3f vs %.3f, "
            "McNemar p=%.2g: %s",
            model_cfg.name,
            version,
            len(truth),
            metrics["accuracy"],
            champion["accuracy"],
            pvalue,
            "; ".join(decision.reasons) or ("blessed" if significant else "not significant"),
        )
        better = best is None or metrics["accuracy"] > best.accuracy
        if decision.blessed and significant and better:
            best = Comeback(version, len(truth), metrics["accuracy"], champion["accuracy"], pvalue)
    return best


def previous_champions(services: Services, model_name: str, champion: str, limit: int) -> list[str]:
    """Up to ``limit`` versions that were champion before ``champion``, the newest first."""
    with transaction(services.database_url) as connection:
        changes = aliases.history(connection, model_name, CHAMPION)
    versions: list[str] = []
    for change in reversed(changes):
        for version in (change.version, change.previous_version):
            if version and version != champion and version not in versions:
                versions.append(str(version))
    return versions[:limit]


def since_decline(outcomes: pd.DataFrame, performance: PerformanceCheck, until: datetime):
    """The labelled rows of a decayed check's window predicted since the decline began."""
    labelled = outcomes[outcomes[ACTUAL].map(lambda a: isinstance(a, str))]
    if performance.changed_hours_ago is None:
        return labelled
    start = until - timedelta(hours=performance.changed_hours_ago)
    return labelled[labelled[PREDICTED_AT] >= start]


def find(
    services: Services,
    model_cfg: ModelConfig,
    champion: str,
    outcomes: pd.DataFrame,
    performance: PerformanceCheck,
    until: datetime,
) -> Comeback | None:
    """The previous champion a decayed check tests again instead of retraining, or None."""
    limit = model_cfg.drift.comeback_versions
    if not limit or not performance.decayed:
        return None
    rows = since_decline(outcomes, performance, until)
    if len(rows) < model_cfg.gates.min_eval_samples:
        return None
    features = rows[model_cfg.feature_names]
    probabilities: dict[str, np.ndarray] = {}
    versions = [champion, *previous_champions(services, model_cfg.name, champion, limit)]
    for version in versions:
        uri = model_uri(model_cfg.name, version)
        try:
            classifier = load_registered_classifier(services.tracking_uri, uri)
        except (MlflowException, OSError, AttributeError) as error:
            # Deleted by retention, or not a Relearn model (imported): nothing to compare.
            log.info("%s v%s cannot be scored again: %s", model_cfg.name, version, error)
            if version == champion:
                return None
            continue
        if list(classifier.classes) != list(model_cfg.classes) or (
            set(classifier.model_cfg.feature_names) - set(model_cfg.feature_names)
        ):
            # Trained on another schema: today's rows cannot score it (or not comparably).
            log.info("%s v%s has another schema: not compared", model_cfg.name, version)
            if version == champion:
                return None
            continue
        probabilities[version] = classifier.predict_proba(features)
    truth = rows[ACTUAL].tolist()
    return choose(model_cfg, truth, probabilities.pop(champion), probabilities)
