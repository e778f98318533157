"""The collection API's wire types: what other languages send is taken as the log holds it."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from relearn.collect.wire import decode_predictions
from relearn_airflow.api.schemas import OutcomeIn, PredictionIn
from tests.unit.test_collect_rows import NOW

ROW = {
    "prediction_id": str(uuid.uuid4()),
    "features": {"x": 1},
    "predicted_label": 1,
    "model_version": 3,
    "confidence": 0.9,
    "unit_id": 42,
}


def test_integer_labels_versions_and_unit_ids_become_their_text():
    frame = decode_predictions(json.dumps({"rows": [ROW]}).encode(), now=NOW)
    assert frame.loc[0, ["predicted_label", "model_version", "unit_id"]].tolist() == [
        "1",
        "3",
        "42",
    ]
    documented = PredictionIn.model_validate(ROW)  # the schema the API documents agrees
    assert (documented.predicted_label, documented.model_version, documented.unit_id) == (
        "1",
        "3",
        "42",
    )
    assert OutcomeIn.model_validate({"prediction_id": "p", "actual_label": 0}).actual_label == "0"


@pytest.mark.parametrize("field", ["predicted_label", "model_version", "unit_id"])
def test_a_boolean_is_no_label_version_or_unit(field):
    """The documented schema refuses it; the decoder keeps it for its row to be rejected
    (``test_collect_rows``) instead of refusing the batch."""
    body = json.dumps({"rows": [{**ROW, field: True}]}).encode()
    assert decode_predictions(body, now=NOW).loc[0, field] is True
    with pytest.raises(ValidationError):
        PredictionIn.model_validate({**ROW, field: True})
