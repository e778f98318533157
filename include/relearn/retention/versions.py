"""Model versions kept: the files of the last ``registry.keep_versions`` versions without an
alias stay; older ones are archived.

Archiving a version deletes its model files from the artifact store and tags its registry
entry ``relearn.archived`` (when, by which run, why): it stays listed with its run, metrics
and lineage, but can no longer be served, promoted or rolled back to
(``abtest.aliases.require_version`` refuses it). Never archived: a version holding any alias,
one a live A/B test compares, or one an in-flight retraining run started from or registered.
The decision and the deletes run under the model's deployment lock, so no alias can move onto
a version while its files go.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from relearn.registry import ARCHIVED_TAG, list_versions, registry_client
from relearn.services import utcnow
from relearn.store import retention as store
from relearn.store.db import transaction
from relearn.store.locks import model_lock

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from relearn.config import ModelConfig
    from relearn.services import Services

log = logging.getLogger(__name__)


class VersionStatus(StrEnum):
    KEPT = "kept"  # among the last ``keep_versions`` without an alias
    IN_USE = "in_use"  # older, but aliased, under test or in a retraining
    ARCHIVED = "archived"  # files removed by this run
    WOULD_ARCHIVE = "would_archive"  # dry run


@dataclass(frozen=True)
class VersionOutcome:
    version: str
    status: VersionStatus
    why: str


@dataclass(frozen=True)
class VersionsResult:
    model_name: str
    dry_run: bool
    keep: int
    versions: tuple[VersionOutcome, ...]  # newest first; archived before this run: left out

    def of(self, status: VersionStatus) -> list[str]:
        return [v.version for v in self.versions if v.status == status]

    def summary(self) -> str:
        gone = self.of(VersionStatus.WOULD_ARCHIVE if self.dry_run else VersionStatus.ARCHIVED)
        verb = "would archive" if self.dry_run else "archived"
        in_use = self.of(VersionStatus.IN_USE)
        return (
            f"{self.model_name}: keeping the files of the last {self.keep} versions without an "
            f"alias; {verb} {len(gone)} older ({', '.join(f'v{v}' for v in gone) or 'none'})"
            + (f", kept {len(in_use)} in use" if in_use else "")
        )


def prune_versions(
    services: Services, model_cfg: ModelConfig, *, trigger_key: str, dry_run: bool = False
) -> VersionsResult:
    """Archive the model's versions older than its last ``keep_versions`` without an alias."""
    name, keep = model_cfg.name, model_cfg.registry.keep_versions
    client = registry_client(services.tracking_uri)
    outcomes = []
    with model_lock(services.database_url, name):
        with transaction(services.database_url) as connection:
            in_use = store.versions_in_use(connection, name)
        unaliased = [v for v in reversed(list_versions(client, name)) if not v["aliases"]]
        for rank, version in enumerate(unaliased):
            number = str(version["version"])
            if ARCHIVED_TAG in version["tags"]:
                continue
            if rank < keep:
                outcomes.append(VersionOutcome(number, VersionStatus.KEPT, f"newest #{rank + 1}"))
            elif number in in_use:
                outcomes.append(VersionOutcome(number, VersionStatus.IN_USE, in_use[number]))
            elif dry_run:
                outcomes.append(VersionOutcome(number, VersionStatus.WOULD_ARCHIVE, "older"))
            else:
                why = f"{utcnow().isoformat()} by {trigger_key}: older than the last {keep}"
                _archive(client, services.tracking_uri, name, number, why)
                outcomes.append(VersionOutcome(number, VersionStatus.ARCHIVED, why))
    result = VersionsResult(name, dry_run, keep, tuple(outcomes))
    log.info("%s", result.summary())
    return result


def _archive(client: MlflowClient, tracking_uri: str, name: str, version: str, why: str) -> None:
    """Delete the version's model files, then tag it: a crash in between leaves it untagged,
    and the next run deletes again (nothing left: no error) and tags it."""
    location = client.get_model_version_download_uri(name, version)
    get_artifact_repository(location, tracking_uri=tracking_uri).delete_artifacts()
    client.set_model_version_tag(name, version, ARCHIVED_TAG, why)
    log.info("%s v%s: model files deleted (%s), version tagged %s", name, version, location, why)
