"""model init's inference, the dataset reader's checks, v1's train/validation/holdout split."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from relearn.bootstrap import NoTrainingDataError, simulated_reference
from relearn.config import ConfigError, ModelConfig, load_config
from relearn.onboarding import files
from relearn.onboarding.dataset import read_sample
from relearn.onboarding.draft import MAX_CATEGORIES, draft_entry, widened
from relearn.onboarding.entry import add_to_config
from relearn.onboarding.files import DatasetError
from relearn.onboarding.split import stratified_split, time_ordered_split

ROWS = 120


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20 + i % 50 for i in range(ROWS)],
            "balance": [-50.0 + i * 2.5 for i in range(ROWS)],
            "plan": ["basic", "pro", "team"] * (ROWS // 3),
            "code": [str(i % 3 + 1) for i in range(ROWS)],
            "customer": [f"c{i}" for i in range(ROWS)],
            "constant": ["x"] * ROWS,
            "score": [None if i % 10 == 0 else float(i) for i in range(ROWS)],
            "when": pd.date_range("2025-01-01", periods=ROWS, freq="h").astype(str),
            "churned": ["no", "yes", "no", "no"] * (ROWS // 4),
        }
    )


@pytest.fixture(params=["csv", "parquet"])
def dataset(request, tmp_path):
    path = tmp_path / f"data.{request.param}"
    frame = _frame()
    frame.to_csv(path, index=False) if request.param == "csv" else frame.to_parquet(path)
    return path


def _features(draft) -> dict:
    return {f["name"]: f for f in draft.entry["features"]}


def test_model_init_infers_types_ranges_categories_and_classes(dataset):
    draft = draft_entry(dataset, name="churn_own", label="churned", time_column="when")
    features = _features(draft)
    assert draft.entry["classes"] == ["no", "yes"] and draft.rows == ROWS
    assert draft.entry["time_column"] == "when" and "when" not in features
    # Numeric: the data's range widened by a margin; a non-negative column keeps 0 as floor.
    assert features["age"]["type"] == "numeric"
    assert 0 <= features["age"]["min"] < 20 and features["age"]["max"] > 69
    assert features["balance"]["min"] < -50 and features["balance"]["max"] > 247.5
    # Text, and digits that read as numbers, with few values: what they say.
    assert features["plan"] == {
        "name": "plan",
        "type": "categorical",
        "categories": ["basic", "pro", "team"],
    }
    assert features["code"]["type"] == "numeric"
    assert features["score"]["nullable"] is True
    assert "nullable" not in features["age"]
    assert set(draft.skipped) == {"customer", "constant"}
    assert str(MAX_CATEGORIES) in draft.skipped["customer"]
    # The options' defaults come with it, and the schema accepts the whole entry.
    assert draft.entry["gates"]["min_eval_samples"] == 100
    ModelConfig.model_validate(draft.entry)


def test_model_init_points_at_a_time_column_it_was_not_told_about(dataset):
    draft = draft_entry(dataset, name="churn_own", label="churned")
    assert "--time-column when" in draft.skipped["when"]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.0, 10.0, (0.0, 11.0)), (-5.0, 5.0, (-6.0, 6.0)), (3.0, 3.0, (2.7, 3.3))],
)
def test_numeric_ranges_get_a_margin(low, high, expected):
    assert widened(low, high) == pytest.approx(expected)


def test_model_init_refuses_a_label_with_one_class_and_unusable_names(tmp_path):
    path = tmp_path / "data.csv"
    pd.DataFrame({"x": [1, 2, 3], "y": ["a", "a", "a"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="single class"):
        draft_entry(path, name="m_one", label="y")
    pd.DataFrame({"x value": [1, 2], "y": ["a", "b"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"'x value'.*rename"):
        draft_entry(path, name="m_one", label="y")
    with pytest.raises(DatasetError, match="no label column 'z'"):
        draft_entry(path, name="m_one", label="z")


def test_model_init_skips_columns_named_like_relearn_s_own_and_refuses_such_a_label(tmp_path):
    # A dataset with a train/test "split" column (common) and a "confidence" column.
    path = tmp_path / "data.csv"
    frame = _frame().assign(split=["train", "test"] * (ROWS // 2), confidence=0.5)
    frame.to_csv(path, index=False)
    draft = draft_entry(path, name="m_reserved", label="churned")
    assert {"split", "confidence"}.isdisjoint(_features(draft))
    assert "rename it" in draft.skipped["split"] and "confidence" in draft.skipped
    with pytest.raises(DatasetError, match=r"label column 'split'.*rename it"):
        draft_entry(path, name="m_reserved", label="split")


def test_write_appends_keeps_comments_and_refuses_a_duplicate(tmp_path):
    data, config = tmp_path / "data.csv", tmp_path / "relearn.yaml"
    _frame().to_csv(data, index=False)
    config.write_text(
        "# my comment\nmodels:\n  - name: first\n    classes: [a, b]\n"
        "    features: [{name: f, type: numeric}]\n",
        encoding="utf-8",
    )
    draft = draft_entry(data, name="second", label="churned", time_column="when")
    add_to_config(config, draft.entry, draft.skipped)
    text = config.read_text(encoding="utf-8")
    assert text.startswith("# my comment\n") and "# not a feature: customer" in text
    loaded = load_config(config)
    assert loaded.model_names == ["first", "second"]
    assert loaded.model("second").model_dump(mode="json", exclude={"source"}) == (
        ModelConfig.model_validate(draft.entry).model_dump(mode="json")
    )
    before = config.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="already has a model 'second'"):
        add_to_config(config, draft.entry, draft.skipped)
    assert config.read_text(encoding="utf-8") == before
    assert yaml.safe_load(before)["models"][1]["name"] == "second"


def _model(dataset, **overrides) -> ModelConfig:
    entry = draft_entry(dataset, name="churn_own", label="churned", time_column="when").entry
    return ModelConfig.model_validate({**entry, **overrides})


def test_read_sample_types_every_column_and_bounds_the_rows(dataset):
    model_cfg = _model(dataset)
    sample = read_sample(dataset, model_cfg, max_rows=50, seed=1)
    assert sample.rows == ROWS and len(sample.frame) == 50
    assert sample.frame["age"].dtype == "float64"
    assert set(sample.frame["plan"]) <= {"basic", "pro", "team"}
    assert sample.digest == files.digest(dataset)
    again = read_sample(dataset, model_cfg, max_rows=50, seed=1)
    pd.testing.assert_frame_equal(sample.frame, again.frame)  # seeded: repeatable


def test_a_malformed_cell_is_named_by_row_and_column(tmp_path):
    good = tmp_path / "good.csv"
    _frame().to_csv(good, index=False)
    model_cfg = _model(good)
    frame = _frame().astype({"age": object})
    frame.loc[41, "age"] = "forty"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=r"row 42, column 'age': 'forty' is not a number"):
        read_sample(bad, model_cfg, max_rows=1000, seed=1)
    frame = _frame()
    frame.loc[7, "plan"] = "enterprise"
    frame.to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=r"row 8, column 'plan': 'enterprise' is not one"):
        read_sample(bad, model_cfg, max_rows=1000, seed=1)
    frame = _frame()
    frame.loc[99, "churned"] = "maybe"
    frame.to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=r"row 100, column 'churned': 'maybe' is not one"):
        read_sample(bad, model_cfg, max_rows=1000, seed=1)


def test_time_ordered_split_trains_on_the_past(dataset):
    model_cfg = _model(dataset)
    frame = read_sample(dataset, model_cfg, max_rows=1000, seed=1).frame.sample(frac=1.0)
    split = time_ordered_split(frame, "when")
    assert (len(split.train), len(split.validation), len(split.holdout)) == (84, 18, 18)
    assert split.train["when"].max() < split.validation["when"].min()
    assert split.validation["when"].max() < split.holdout["when"].min()


def test_stratified_split_keeps_the_class_mix_and_is_seeded():
    frame = pd.DataFrame({"x": range(400), "y": ["a"] * 300 + ["b"] * 100})
    split = stratified_split(frame, "y", seed=3)
    for part in (split.train, split.validation, split.holdout):
        assert part["y"].value_counts(normalize=True)["b"] == pytest.approx(0.25, abs=0.02)
    assert len(split.train) == 280
    again = stratified_split(frame, "y", seed=3)
    assert list(again.holdout["x"]) == list(split.holdout["x"])
    # Not in time order: the holdout is drawn from the whole range.
    assert split.holdout["x"].min() < 200 < split.holdout["x"].max()


def test_a_model_without_data_or_simulation_is_refused_not_simulated(dataset):
    model_cfg = _model(dataset)
    assert model_cfg.simulation is None
    with pytest.raises(NoTrainingDataError, match=r"--dataset FILE.*--from-mlflow"):
        simulated_reference(model_cfg)


def test_the_time_column_cannot_be_a_feature_or_the_label(dataset):
    entry = draft_entry(dataset, name="churn_own", label="churned", time_column="when").entry
    with pytest.raises(ValueError, match="time column 'age'"):
        ModelConfig.model_validate({**entry, "time_column": "age"})


def test_ragged_lines_and_empty_labels_are_named(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,label\n1,2,x\n3,4,y\n5,6,y,7\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="Expected 3 fields in line 4, saw 4"):
        draft_entry(ragged, name="m_one", label="label")
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("a,b,label\n1,2,x\n3,4,\n5,6,y\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="row 2, column 'label': empty"):
        draft_entry(unlabelled, name="m_one", label="label")
    with pytest.raises(DatasetError, match="--name 'Bad Name'"):
        draft_entry(unlabelled, name="Bad Name", label="label")
