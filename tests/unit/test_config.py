from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from relearn.config import ConfigError, DriftConfig, load_config, parse_config
from tests.conftest import ROOT, run_cli

VALID = yaml.safe_load((ROOT / "relearn.yaml").read_text())


def _raw() -> dict:
    return yaml.safe_load(yaml.safe_dump(VALID))


def test_repository_config_is_valid_with_documented_defaults() -> None:
    model = load_config(ROOT / "relearn.yaml").model("churn")
    assert model.reinforcement.lookback_days == 7
    assert model.reinforcement.min_error_samples == 10
    assert model.reinforcement.confidence_threshold == 0.7
    assert model.training.epochs == 5
    assert model.training.learning_rate == 1e-3
    assert model.drift.threshold == 0.2
    assert model.abtest.stages == [10, 25, 50, 100]
    assert model.gates.min_f1 == 0.65


def test_invalid_value_names_the_field_and_file() -> None:
    raw = _raw()
    raw["models"][0]["reinforcement"]["confidence_threshold"] = 1.5
    with pytest.raises(ConfigError) as error:
        parse_config(raw, Path("my.yaml"), environ={})
    assert "my.yaml" in str(error.value)
    assert "models[0].reinforcement.confidence_threshold" in str(error.value)


def test_missing_required_field_and_unknown_key_are_reported() -> None:
    raw = _raw()
    del raw["models"][0]["classes"]
    raw["models"][0]["trainig"] = {}
    with pytest.raises(ConfigError) as error:
        parse_config(raw, Path("c.yaml"), environ={})
    message = str(error.value)
    assert "models[0].classes: Field required" in message
    assert "models[0].trainig" in message


def test_categorical_feature_needs_categories() -> None:
    raw = _raw()
    raw["models"][0]["features"].append({"name": "plan", "type": "categorical"})
    with pytest.raises(ConfigError, match="categorical feature 'plan' needs at least 2"):
        parse_config(raw, Path("c.yaml"), environ={})


def test_integer_classes_and_categories_are_their_text() -> None:
    """YAML reads `classes: [0, 1]` as numbers; predictions log them as text."""
    raw = _raw()
    model = raw["models"][0]
    model["classes"] = [0, 1]
    model["features"].append({"name": "plan", "type": "categorical", "categories": [1, 2, 3]})
    parsed = parse_config(raw, Path("c.yaml"), environ={}).models[0]
    assert parsed.classes == ["0", "1"]
    assert parsed.features[-1].categories == ["1", "2", "3"]
    model["classes"] = [True, False]
    with pytest.raises(ConfigError, match=r"models\[0\]\.classes\[0\]: Input should be a valid"):
        parse_config(raw, Path("c.yaml"), environ={})


@pytest.mark.parametrize("where", ["feature", "label"])
def test_a_feature_or_label_named_like_relearn_s_own_columns_is_refused(where: str) -> None:
    # A feature "predicted_at" would be overwritten by the prediction time in every window.
    raw = _raw()
    if where == "feature":
        raw["models"][0]["features"].append({"name": "predicted_at", "type": "numeric"})
    else:
        raw["models"][0]["label"] = "split"
    taken = "predicted_at" if where == "feature" else "split"
    with pytest.raises(ConfigError, match=f"{taken}: Relearn's own column name"):
        parse_config(raw, Path("c.yaml"), environ={})


def test_env_overrides_apply_globally_and_per_model() -> None:
    environ = {
        "RELEARN__TRAINING__EPOCHS": "3",
        "RELEARN__CHURN__REINFORCEMENT__MIN_ERROR_SAMPLES": "25",
        "RELEARN__OTHER__TRAINING__EPOCHS": "9",
    }
    model = parse_config(_raw(), Path("c.yaml"), environ=environ).model("churn")
    assert model.training.epochs == 3
    assert model.reinforcement.min_error_samples == 25


def test_env_override_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"drift\.threshold"):
        parse_config(_raw(), Path("c.yaml"), environ={"RELEARN__DRIFT__THRESHOLD": "-1"})


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown model 'nope' \(configured: churn, credit_risk\)"
    ):
        load_config(ROOT / "relearn.yaml").model("nope")


def test_cli_exits_1_with_a_clear_message_on_bad_config(tmp_path: Path) -> None:
    missing = run_cli("--config", str(tmp_path / "absent.yaml"), "config")
    assert missing.returncode == 1
    assert "missing configuration" in missing.stderr and "absent.yaml" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: x\n")
    result = run_cli("--config", str(bad), "config")
    assert result.returncode == 1
    assert "models[0].name" in result.stderr and str(bad) in result.stderr
    assert run_cli("config").returncode == 0


@pytest.mark.parametrize("hours", [float("inf"), float("nan"), 24 * 366])
def test_drift_hours_are_finite_and_at_most_a_year(hours: float) -> None:
    with pytest.raises(ValidationError, match="outcome_delay_hours"):
        DriftConfig(outcome_delay_hours=hours)
    with pytest.raises(ValidationError, match="cooldown_hours"):
        DriftConfig(cooldown_hours=hours)
