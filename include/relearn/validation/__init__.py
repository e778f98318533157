"""Great Expectations validation of a window of logged predictions before it is retrained on.

A window comes from producers Relearn does not control, so every row is checked against the
model's configuration before it can reach training: rows failing any row-level expectation are
quarantined (with the reasons) instead of failing the run, and only batch-level problems
(missing columns, no rows, too many bad rows) make the whole window unusable.

- ``checks``: the row-level checks of a model and the GX expectation suite built from them;
- ``frame``: the prepared copy of a window the suite runs on (derived columns, total decoding);
- ``report``: the outcome (valid and quarantined rows, problems, the compact GX result merged
  over the chunks GX ran on);
- ``window``: ``validate_window``, which runs the suite on bounded chunks of the window (GX's
  memory grows with its input) and judges the batch.
"""

import logging
import os

# Read when great_expectations is imported (by the modules below): no usage statistics, no
# INFO chatter in every task log.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
if logging.getLogger("great_expectations").level == logging.NOTSET:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

from relearn.validation.checks import build_suite
from relearn.validation.report import DataValidationError, ValidationReport
from relearn.validation.window import validate_window

__all__ = ["DataValidationError", "ValidationReport", "build_suite", "validate_window"]
