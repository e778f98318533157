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
import pandas as pd

from relearn.abtest.aliases import PREVIOUS_CHAMPION, require_version
from relearn.abtest.stats import mcnemar_pvalue
from relearn.config import FeatureType
from relearn.drift.window import ACTUAL, PREDICTED_AT
from relearn.evaluation import classification_metrics
from relearn.gates import decide
from relearn.registry import CHAMPION, model_uri, registry_client
from relearn.retraining.artifacts import load_registered_classifier
from relearn.store import aliases
from relearn.store.db import transaction

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from relearn.config import ModelConfig
    from relearn.drift.performance import PerformanceCheck
    from relearn.services import Services
    from relearn.training.classifier import TabularClassifier

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
        # Several versions are tested against the same rows: Bonferroni keeps the chance of
        # any false comeback at comeback_significance.
        significant = pvalue < model_cfg.drift.comeback_significance / len(previous)
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
    """Up to ``limit`` versions that left ``champion`` through a promotion (they became
    ``previous_champion``: known good then), the newest first. A version someone rolled back
    away from (a rollback never makes it ``previous_champion``) never comes back by itself."""
    with transaction(services.database_url) as connection:
        changes = aliases.history(connection, model_name)
    moves: dict[datetime, list[aliases.AliasChange]] = {}
    for change in changes:  # one alias move writes its rows at one time
        moves.setdefault(change.changed_at, []).append(change)
    known_good: list[str] = []
    rolled_away: set[str] = set()
    for move in moves.values():
        kept = {c.version for c in move if c.alias == PREVIOUS_CHAMPION and c.version}
        for change in (c for c in move if c.alias == CHAMPION):
            left = change.previous_version
            if not left or left == change.version:
                continue
            if left in kept:
                known_good.append(left)
            else:
                rolled_away.add(left)
    versions: list[str] = []
    for version in reversed(known_good):
        if version != champion and version not in rolled_away and version not in versions:
            versions.append(str(version))
    return versions[:limit]


def since_decline(outcomes: pd.DataFrame, performance: PerformanceCheck, until: datetime):
    """The labelled rows of a decayed check's window predicted since the decline began."""
    labelled = outcomes[outcomes[ACTUAL].map(lambda a: isinstance(a, str))]
    if performance.changed_hours_ago is None:
        return labelled
    start = until - timedelta(hours=performance.changed_hours_ago)
    return labelled[labelled[PREDICTED_AT] >= start]


def _scorable(rows: pd.DataFrame, model_cfg: ModelConfig) -> pd.DataFrame:
    """The rows today's schema can score: the drift window keeps rows a retraining would
    quarantine (a null in a feature that may not be null, an infinite number), which no
    classifier takes."""
    keep = np.ones(len(rows), dtype=bool)
    for feature in model_cfg.features:
        values = rows[feature.name]
        if feature.type is FeatureType.NUMERIC:
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            keep &= np.isfinite(numbers) | (feature.nullable & np.isnan(numbers))
        elif not feature.nullable:
            keep &= values.notna().to_numpy()
    return rows[keep]


def _same_schema(classifier: TabularClassifier, model_cfg: ModelConfig) -> bool:
    """Same classes, and every feature the version reads is today's (type, categories,
    nullability): otherwise today's rows cannot score it comparably."""
    today = {f.name: (f.type, f.categories, f.nullable) for f in model_cfg.features}
    return list(classifier.classes) == list(model_cfg.classes) and all(
        today.get(f.name) == (f.type, f.categories, f.nullable)
        for f in classifier.model_cfg.features
    )


def _probabilities(
    services: Services, model_cfg: ModelConfig, version: str, features: pd.DataFrame
) -> np.ndarray | None:
    """The version's probabilities on ``features``; None when it cannot be scored again."""
    client = registry_client(services.tracking_uri)
    try:
        require_version(client, model_cfg.name, version)  # archived: its files are gone
        uri = model_uri(model_cfg.name, version)
        classifier = load_registered_classifier(services.tracking_uri, uri)
        if not _same_schema(classifier, model_cfg):
            log.info("%s v%s has another schema: not compared", model_cfg.name, version)
            return None
        return classifier.predict_proba(features)
    # A comeback is a shortcut: whatever keeps a version from being scored (gone, not a
    # Relearn model, a storage error) leaves the decayed check to its retraining.
    except Exception as error:
        log.warning("%s v%s cannot be scored again: %s", model_cfg.name, version, error)
        return None


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
    previous = previous_champions(services, model_cfg.name, champion, limit)
    if not previous:
        return None
    rows = _scorable(since_decline(outcomes, performance, until), model_cfg)
    if len(rows) < model_cfg.gates.min_eval_samples:
        return None
    features = rows[model_cfg.feature_names]
    champion_proba = _probabilities(services, model_cfg, champion, features)
    if champion_proba is None:
        return None
    probabilities = {
        version: proba
        for version in previous
        if (proba := _probabilities(services, model_cfg, version, features)) is not None
    }
    return choose(model_cfg, rows[ACTUAL].tolist(), champion_proba, probabilities)
