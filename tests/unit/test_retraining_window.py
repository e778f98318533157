"""Joining the parsed slices of the retraining window without turning codes back into text."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from relearn.store.retraining_window import as_text, concat


def test_slices_with_different_categories_stay_categorical_over_their_sorted_union() -> None:
    """``pd.concat`` alone makes a string per row of categoricals whose categories differ."""
    first = pd.DataFrame({"label": pd.Categorical(["yes", None, "yes"]), "x": [1.0, 2.0, 3.0]})
    second = pd.DataFrame({"label": pd.Categorical(["no", "maybe"]), "x": [4.0, 5.0]})

    joined = concat([first, second])

    assert isinstance(joined["label"].dtype, pd.CategoricalDtype)
    assert list(joined["label"].cat.categories) == ["maybe", "no", "yes"]
    assert joined["label"].astype(object).tolist()[:1] == ["yes"]
    assert joined["label"].isna().tolist() == [False, True, False, False, False]
    assert joined["label"].astype(str).tolist()[2:] == ["yes", "no", "maybe"]
    assert joined["x"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert list(joined.index) == list(range(5))


def test_as_text_equals_astype_str_in_one_chunk() -> None:
    """The window's text is what ``astype(str)`` gives (the window is unchanged), built from
    codes, in one chunk: a take of a chunked column first joins its chunks."""
    labels = pd.Series(pd.Categorical(["yes", None, "no", "yes"]), name="label")
    chunked = pd.concat([pd.Series(["a", "b"], dtype=str), pd.Series(["c", None], dtype=str)])
    chunked = chunked.reset_index(drop=True)

    for column in (labels, chunked):
        text = as_text(column)
        pd.testing.assert_series_equal(text, column.astype(str))
        assert not isinstance(pa.array(text.array), pa.ChunkedArray)
