"""``relearn ab ...`` and ``relearn registry ...``: the deployer from a terminal.

Every change goes through the deployer (``relearn.abtest.deploy`` and ``.champion``, the same
code the Airflow tasks use), so alias moves are crash-safe and land in the alias history with
``--by`` as the author. What the deployer refuses (no champion, a live test, ...) is printed as
one line with exit code 1.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from relearn.abtest import DeployError
from relearn.abtest.champion import set_alias, set_champion
from relearn.abtest.deploy import check_test, start_test
from relearn.abtest.rollback import rollback_champion
from relearn.config import load_config
from relearn.registry import list_versions, registry_client
from relearn.services import NoChampionError, Services, utcnow
from relearn.settings import load_settings
from relearn.store import abtests
from relearn.store.aliases import history
from relearn.store.db import transaction

if TYPE_CHECKING:
    import argparse

    from relearn.config import ModelConfig


def _context(args: argparse.Namespace) -> tuple[Services, ModelConfig]:
    services = Services.from_settings(load_settings())
    return services, load_config(args.config).model(args.model)


def _print(payload: Any) -> None:
    print(json.dumps(payload, default=str))


def _refused(error: Exception) -> int:
    print(f"relearn: {error}", file=sys.stderr)
    return 1


def run_ab(args: argparse.Namespace) -> int:
    services, model_cfg = _context(args)
    if args.ab_command == "status":
        _print_status(services, model_cfg.name)
        return 0
    now = utcnow()
    trigger_key = f"cli__{args.ab_command}__{now.isoformat()}"
    try:
        if args.ab_command == "start":
            outcome = start_test(
                services,
                model_cfg,
                now=now,
                trigger_key=trigger_key,
                version=args.version,
                traffic=args.traffic,
                by=args.by,
            )
        else:
            outcome = check_test(
                services,
                model_cfg,
                now=now,
                trigger_key=trigger_key,
                action=args.ab_command,
                traffic=getattr(args, "traffic", None),
                by=args.by,
                auto_start=False,
            )
    except (NoChampionError, DeployError) as error:
        return _refused(error)
    _print(outcome.to_dict())
    return 0


def _print_status(services: Services, model_name: str) -> None:
    with transaction(services.database_url) as connection:
        for test in abtests.list_tests(connection, model_name):
            decided = [d.__dict__ for d in abtests.decisions(connection, test.id)]
            _print({**test.__dict__, "decisions": decided})


def run_registry(args: argparse.Namespace) -> int:
    services, model_cfg = _context(args)
    name = model_cfg.name
    command = args.registry_command
    if command == "list":
        for version in list_versions(registry_client(services.tracking_uri), name):
            _print(version)
        return 0
    if command == "history":
        with transaction(services.database_url) as connection:
            for change in history(connection, name):
                _print(change.__dict__)
        return 0
    try:
        if command == "alias":
            version = None if args.remove else args.version
            set_alias(services, name, args.alias, version, by=args.by, reason=args.reason)
            _print({"model": name, "alias": args.alias, "version": version})
            return 0
        if command == "rollback":
            done = rollback_champion(
                services,
                model_cfg,
                to=args.to_version or args.to,
                min_f1=args.min_f1,
                by=args.by,
                reason=args.reason,
            )
            _print({"model": name, "champion": done.version, "reason": done.reason})
            return 0
        version = set_champion(
            services, model_cfg, version=args.version, by=args.by, reason=args.reason
        )
    except DeployError as error:
        return _refused(error)
    _print({"model": name, "champion": version})
    return 0
