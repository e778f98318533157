"""What a client service may ask about a model: its versions, aliases, live split and arm.

The arm of a unit is chosen exactly as ``relearn.serving.router.SplitRouter`` chooses it (the
same ``choose_arm`` over the running test's split), and its version is the arm's alias, so a
service in any language serves each unit what a Python ``Predictor`` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from relearn.registry import CHAMPION, aliases, list_versions, registry_client
from relearn.services import NoChampionError, utcnow
from relearn.serving.router import CHAMPION_ARM, Split, bucket, choose_arm
from relearn.store.abtests import LIVE, RUNNING, live_test
from relearn.store.db import transaction
from relearn.store.usage import UsageEvent, UsageKind, UsageSummary, record_usage, usage_since

if TYPE_CHECKING:
    from relearn.config import ModelConfig
    from relearn.services import Services
    from relearn.store.abtests import ABTest


USAGE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class LiveSplit:
    """The model's A/B test in progress: ``traffic_percent`` of units go to the challenger."""

    test_id: str
    status: str
    champion_version: str | None
    challenger_version: str
    traffic_percent: int


@dataclass(frozen=True)
class ModelState:
    name: str
    kind: str
    classes: list[str]
    features: list[dict[str, Any]]
    aliases: dict[str, str]
    versions: list[dict[str, Any]]
    live_split: LiveSplit | None
    # What clients did over the last ``USAGE_WINDOW`` (batches, rows, exposures per arm).
    usage: UsageSummary


@dataclass(frozen=True)
class Assignment:
    """The arm and version serving ``unit_id`` now; ``test_id``/``bucket`` when a test runs."""

    model_name: str
    unit_id: str
    arm: str
    model_version: str
    test_id: str | None
    bucket: int | None


def _split(test: ABTest | None) -> LiveSplit | None:
    if test is None:
        return None
    return LiveSplit(
        str(test.id),
        test.status,
        test.champion_version,
        test.challenger_version,
        test.traffic_percent,
    )


def describe_model(services: Services, model_cfg: ModelConfig) -> ModelState:
    """The model's schema, registry versions with their aliases, and its live test."""
    client = registry_client(services.tracking_uri)
    with transaction(services.database_url) as connection:
        test = live_test(connection, model_cfg.name, LIVE)
        usage = usage_since(connection, model_cfg.name, utcnow() - USAGE_WINDOW)
    return ModelState(
        name=model_cfg.name,
        kind=str(model_cfg.kind),
        classes=list(model_cfg.classes),
        features=[f.model_dump(mode="json", exclude_defaults=True) for f in model_cfg.features],
        aliases={alias: str(v) for alias, v in aliases(client, model_cfg.name).items()},
        versions=list_versions(client, model_cfg.name),
        live_split=_split(test),
        usage=usage,
    )


def champion_versions(services: Services, names: list[str]) -> dict[str, str | None]:
    client = registry_client(services.tracking_uri)
    return {name: aliases(client, name).get(CHAMPION) for name in names}


def assign(
    services: Services, model_name: str, unit_id: str, *, sender: str | None = None
) -> Assignment:
    """The arm ``SplitRouter`` would route ``unit_id`` to, and the version behind that arm.

    An arm whose alias is gone (a test just ended) falls back to the champion, as the
    ``Predictor`` does. With ``sender``, the answer is recorded as an exposure (the A/B test's
    exposure log) in the same transaction that read the test: one connection per request.

    :raises NoChampionError: the model has no champion to serve anyone.
    """
    current = aliases(registry_client(services.tracking_uri), model_name)
    if CHAMPION_ARM not in current:
        raise NoChampionError(model_name)
    with transaction(services.database_url) as connection:
        test = live_test(connection, model_name, (RUNNING,))
        split = None if test is None else Split(str(test.id), test.traffic_percent)
        arm = choose_arm(split, unit_id)
        if arm not in current:
            arm = CHAMPION_ARM
        found = Assignment(
            model_name=model_name,
            unit_id=unit_id,
            arm=arm,
            model_version=str(current[arm]),
            test_id=None if split is None else split.test_id,
            bucket=None if split is None else bucket(split.test_id, unit_id),
        )
        if sender is not None:
            record_usage(connection, model_name, _exposure(found, sender))
    return found


def _exposure(assignment: Assignment, sender: str) -> UsageEvent:
    details = {
        "arm": assignment.arm,
        "model_version": assignment.model_version,
        "test_id": assignment.test_id,
        "bucket": assignment.bucket,
    }
    return UsageEvent(UsageKind.EXPOSURE, sender, unit_id=assignment.unit_id, details=details)
