"""``relearn ab ...`` and ``relearn registry ...``: the deployer from a terminal.

Every change goes through ``relearn.abtest.deploy`` (the same code the Airflow tasks use), so
alias moves are crash-safe and land in the alias history with ``--by`` as the author.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from relearn.config import ModelConfig
    from relearn.services import Services


def _context(args: argparse.Namespace) -> tuple[Services, ModelConfig]:
    from relearn.config import load_config
    from relearn.services import Services
    from relearn.settings import load_settings

    services = Services.from_settings(load_settings())
    return services, load_config(args.config).model(args.model)


def _print(payload: Any) -> None:
    print(json.dumps(payload, default=str))


def run_ab(args: argparse.Namespace) -> int:
    from relearn.abtest.deploy import check_test, start_test
    from relearn.store import abtests
    from relearn.store.db import transaction

    services, model_cfg = _context(args)
    now = datetime.now(UTC)
    run_key = f"cli__{args.ab_command}__{now.isoformat()}"
    if args.ab_command == "status":
        with transaction(services.database_url) as connection:
            for test in abtests.list_tests(connection, model_cfg.name):
                decided = [d.__dict__ for d in abtests.decisions(connection, test.id)]
                _print({**test.__dict__, "decisions": decided})
        return 0
    if args.ab_command == "start":
        outcome = start_test(
            services,
            model_cfg,
            now=now,
            run_key=run_key,
            version=args.version,
            traffic=args.traffic,
            by=args.by,
        )
    else:
        outcome = check_test(
            services,
            model_cfg,
            now=now,
            run_key=run_key,
            action=args.ab_command,
            traffic=getattr(args, "traffic", None),
            by=args.by,
            auto_start=False,
        )
    _print(outcome.to_dict())
    return 0


def run_registry(args: argparse.Namespace) -> int:
    from relearn.abtest.deploy import set_alias, set_champion
    from relearn.registry import list_versions, registry_client
    from relearn.store.aliases import history
    from relearn.store.db import transaction

    services, model_cfg = _context(args)
    name = model_cfg.name
    if args.registry_command == "list":
        for version in list_versions(registry_client(services.tracking_uri), name):
            _print(version)
    elif args.registry_command == "history":
        with transaction(services.database_url) as connection:
            for change in history(connection, name):
                _print(change.__dict__)
    elif args.registry_command == "promote":
        version = set_champion(
            services, model_cfg, version=args.version, by=args.by, reason=args.reason
        )
        _print({"model": name, "champion": version})
    elif args.registry_command == "alias":
        version = None if args.remove else args.version
        set_alias(services, name, args.alias, version, by=args.by, reason=args.reason)
        _print({"model": name, "alias": args.alias, "version": version})
    else:
        version = set_champion(
            services,
            model_cfg,
            version=args.to_version,
            rollback=True,
            by=args.by,
            reason=args.reason,
        )
        _print({"model": name, "champion": version})
    return 0
