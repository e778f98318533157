"""``relearn`` command line: every step of the product without Airflow.

Layout: ``parsers/`` holds the light registration modules (argparse only, imported to build
every parser); each command's handler lives in a module that imports what it needs at the top
and is imported only when that command runs (``relearn.cli.app.main``). Extension packages
add commands through the entry-point group ``relearn.cli`` (see ``relearn.cli.app``).
Exit codes: 0 ok, 1 bad configuration or input, 2 the stack cannot be reached or started.
"""

from __future__ import annotations

from relearn.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
