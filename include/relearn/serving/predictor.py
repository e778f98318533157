"""``Predictor``: predictions from the registry's champion, logged to Postgres in batches."""

from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlflow.exceptions import MlflowException

from relearn.registry import CHAMPION, alias_version, load_pyfunc, model_uri, registry_client
from relearn.services import Services, utcnow
from relearn.serving.router import ChampionRouter, Router
from relearn.store.db import transaction
from relearn.store.predictions import LoggedPrediction, attach_outcomes, insert_predictions
from relearn.training.preprocessing import feature_frame

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import pandas as pd

    from relearn.config import ModelConfig

log = logging.getLogger(__name__)


class ModelNotDeployedError(RuntimeError):
    """The registry has no version behind the alias a Predictor needs."""


class Predictor:
    """Predicts with ``models:/<name>@champion`` (or the arm's alias) and logs each prediction.

    Rows are buffered and written ``batch_size`` at a time (and on ``flush``/exit), so the
    database sees one statement per batch instead of one per prediction.

    :param services: Relearn's database (the log) and MLflow server (the registry).
    :param model_cfg: the model's configuration (feature schema, classes).
    :param router: chooses the arm per unit; the champion serves everything by default.
    :param alias_ttl: seconds between re-reading an arm's alias (a promotion is followed
        that late without a restart).
    :param new_id: makes prediction ids (random UUIDs); a seeded one makes replays repeatable,
        since retraining's holdout and replay samples are chosen by id hash.
    """

    def __init__(
        self,
        services: Services,
        model_cfg: ModelConfig,
        *,
        router: Router | None = None,
        batch_size: int = 500,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
        alias_ttl: float = 30.0,
    ) -> None:
        self.services = services
        self.model_cfg = model_cfg
        self.client = registry_client(services.tracking_uri)
        self.router = router or ChampionRouter()
        self.batch_size = batch_size
        self._new_id = new_id
        self.alias_ttl = alias_ttl
        self._checked: dict[str, float] = {}
        self._models: dict[str, tuple[str, Any]] = {}
        self._buffer: list[LoggedPrediction] = []

    def _model(self, arm: str) -> tuple[str, Any]:
        """The arm's (version, model), following its alias at most ``alias_ttl`` seconds late."""
        cached = self._models.get(arm)
        now = time.monotonic()
        if cached is not None and now - self._checked.get(arm, -math.inf) < self.alias_ttl:
            return cached
        try:
            version = alias_version(self.client, self.model_cfg.name, arm)
        except MlflowException:
            if cached is None:
                raise
            # A registry blip must not fail predictions: keep serving what is loaded.
            log.warning("could not re-read the %s alias; serving v%s", arm, cached[0])
            self._checked[arm] = now
            return cached
        if version is None:
            raise ModelNotDeployedError(
                f"model '{self.model_cfg.name}' has no '{arm}' version in the registry "
                "(run `relearn bootstrap` first)"
            )
        if cached is None or cached[0] != str(version.version):
            uri = model_uri(self.model_cfg.name, version.version)
            log.info("loading %s for arm %s", uri, arm)
            self._models[arm] = (str(version.version), load_pyfunc(self.services.tracking_uri, uri))
        self._checked[arm] = now
        return self._models[arm]

    def _available(self, arms: list[str]) -> list[str]:
        """The arms as routed, except that a non-champion arm whose alias is gone (a test just
        ended, the router has not seen it yet) falls back to the champion."""
        for arm in set(arms) - {CHAMPION}:
            try:
                self._model(arm)
            except ModelNotDeployedError:
                log.info("no '%s' version (the test ended): serving the champion", arm)
                self._models.pop(arm, None)
                arms = [CHAMPION if a == arm else a for a in arms]
        return arms

    def reload(self) -> None:
        """Re-read every alias on the next prediction (models stay loaded if unchanged)."""
        self._checked.clear()

    def serving_version(self, arm: str = CHAMPION) -> str:
        return self._model(arm)[0]

    def predict(
        self,
        frame: pd.DataFrame,
        *,
        unit_ids: Sequence[str | None] | None = None,
        at: Sequence[datetime] | datetime | None = None,
    ) -> list[LoggedPrediction]:
        """Predict every row; invalid features raise before anything is predicted or logged."""
        features = feature_frame(frame, self.model_cfg)
        n = len(features)
        unit_ids = list(unit_ids) if unit_ids is not None else [None] * n
        now = utcnow()
        times = [at or now] * n if at is None or isinstance(at, datetime) else list(at)
        if len(unit_ids) != n or len(times) != n:
            raise ValueError("unit_ids and at must have one entry per row")
        arms = self._available(self.router.arms(unit_ids))
        records = features.to_dict(orient="records")
        results: list[LoggedPrediction | None] = [None] * n
        for arm in dict.fromkeys(arms):
            rows = [i for i, a in enumerate(arms) if a == arm]
            version, model = self._model(arm)
            started = time.perf_counter()
            probabilities = model.predict(features.iloc[rows])
            latency_ms = (time.perf_counter() - started) * 1000 / len(rows)
            for row, probs in zip(rows, probabilities.to_dict(orient="records"), strict=True):
                label = max(probs, key=probs.get)
                results[row] = LoggedPrediction(
                    prediction_id=self._new_id(),
                    model_name=self.model_cfg.name,
                    model_version=version,
                    unit_id=unit_ids[row],
                    predicted_at=times[row],
                    features=records[row],
                    predicted_label=label,
                    confidence=float(probs[label]),
                    probabilities={k: float(v) for k, v in probs.items()},
                    latency_ms=latency_ms,
                    served_by=arm,
                )
        logged = [r for r in results if r is not None]
        self._buffer.extend(logged)
        if len(self._buffer) >= self.batch_size:
            self.flush()
        return logged

    def flush(self) -> None:
        """Write buffered predictions in one transaction."""
        if not self._buffer:
            return
        with transaction(self.services.database_url) as connection:
            insert_predictions(connection, self._buffer)
        log.debug("logged %d predictions", len(self._buffer))
        self._buffer.clear()

    def record_outcomes(self, outcomes: Iterable[tuple[uuid.UUID, str | int, datetime]]) -> int:
        """Attach actual labels to logged predictions; returns how many rows changed.

        An integer label is its text (class ``"1"``), as in the collection API."""
        outcomes = [
            (pid, str(label) if type(label) is int else label, at) for pid, label, at in outcomes
        ]
        unknown = {label for _, label, _ in outcomes} - set(self.model_cfg.classes)
        if unknown:
            raise ValueError(
                f"unknown label(s) {sorted(unknown)} for model '{self.model_cfg.name}' "
                f"(classes: {self.model_cfg.classes})"
            )
        self.flush()  # an outcome may refer to a prediction still in the buffer
        with transaction(self.services.database_url) as connection:
            return attach_outcomes(connection, outcomes)

    def record_outcome(
        self, prediction_id: uuid.UUID, actual_label: str | int, at: datetime | None = None
    ) -> bool:
        return self.record_outcomes([(prediction_id, actual_label, at or utcnow())]) == 1

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()
