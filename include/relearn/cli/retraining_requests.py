"""Handler of ``request create|list|cancel``: the queue the ``manual_retraining`` DAG serves."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from relearn.config import load_config
from relearn.settings import load_settings
from relearn.store import requests
from relearn.store.db import transaction

if TYPE_CHECKING:
    import argparse


def request(args: argparse.Namespace) -> int:
    with transaction(load_settings().database_url("relearn")) as connection:
        if args.request_command == "create":
            found = [
                requests.create_request(
                    connection,
                    model_name=args.model,
                    known_models=load_config(args.config).model_names,
                    reason=args.reason,
                    priority=args.priority,
                    requested_by=args.requested_by,
                )
            ]
        elif args.request_command == "cancel":
            found = [requests.cancel_request(connection, args.id)]
        else:
            found = requests.list_requests(connection, status=args.status, limit=args.limit)
    for found_request in found:
        print(json.dumps(found_request.as_dict()))
    return 0
