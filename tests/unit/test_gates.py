"""``gates.decide``: every bar on its own, at and just below its threshold."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relearn.abtest.policy import replaces
from relearn.config import GateConfig
from relearn.gates import decide

GATES = GateConfig(
    min_f1=0.65,
    min_accuracy=0.65,
    min_class_precision=0.60,
    min_class_recall=0.60,
    min_mean_confidence=0.70,
    min_eval_samples=100,
    max_regression=0.01,
    min_improvement=0.0,
)


def metrics(**changes) -> dict:
    """A candidate (or champion) comfortably above every bar; ``changes`` override it."""
    good = {
        "n": 500,
        "accuracy": 0.80,
        "f1_macro": 0.78,
        "mean_confidence": 0.85,
        "support": {"no": 300, "yes": 200},
        "precision": {"no": 0.82, "yes": 0.75},
        "recall": {"no": 0.85, "yes": 0.70},
    }
    for key, value in changes.items():
        good[key] = {**good[key], **value} if isinstance(value, dict) else value
    return good


def failed(decision) -> set[str]:
    return {c.name for c in decision.checks if not c.passed}


def test_a_good_candidate_is_blessed_and_every_check_is_kept():
    decision = decide(metrics(), metrics(accuracy=0.79, f1_macro=0.77), GATES)
    assert decision.blessed and decision.reasons == []
    assert {c.name for c in decision.checks} == {
        "eval_samples",
        "accuracy",
        "f1_macro",
        "mean_confidence",
        "precision[no]",
        "precision[yes]",
        "recall[no]",
        "recall[yes]",
        "accuracy_vs_champion",
        "f1_macro_vs_champion",
    }


@pytest.mark.parametrize(
    ("changes", "check", "threshold"),
    [
        ({"precision": {"yes": 0.59}}, "precision[yes]", 0.60),
        ({"precision": {"no": 0.10}}, "precision[no]", 0.60),
        ({"recall": {"yes": 0.599}}, "recall[yes]", 0.60),
        ({"recall": {"no": 0.0}}, "recall[no]", 0.60),
        ({"mean_confidence": 0.69}, "mean_confidence", 0.70),
        ({"n": 99}, "eval_samples", 100),
        ({"accuracy": 0.64}, "accuracy", 0.65),
        ({"f1_macro": 0.649}, "f1_macro", 0.65),
    ],
)
def test_each_absolute_bar_rejects_on_its_own(changes, check, threshold):
    decision = decide(metrics(**changes), None, GATES)
    assert not decision.blessed
    assert failed(decision) == {check}
    [reason] = decision.reasons
    assert reason.startswith(f"{check} ") and reason.endswith(f"< {threshold:.4f}")


@pytest.mark.parametrize(
    "changes",
    [
        {"precision": {"yes": 0.60}},
        {"recall": {"no": 0.60}},
        {"mean_confidence": 0.70},
        {"n": 100},
    ],
)
def test_a_value_exactly_at_its_bar_passes(changes):
    assert decide(metrics(**changes), None, GATES).blessed


def test_a_class_absent_from_the_holdout_is_not_judged():
    decision = decide(
        metrics(support={"yes": 0}, precision={"yes": 0.0}, recall={"yes": 0.0}), None, GATES
    )
    assert decision.blessed
    assert not {"precision[yes]", "recall[yes]"} & {c.name for c in decision.checks}


def test_regression_within_max_regression_passes():
    champion = metrics(accuracy=0.805, f1_macro=0.789)  # candidate 0.80 / 0.78: -0.005, -0.009
    decision = decide(metrics(), champion, GATES)
    assert decision.blessed
    check = {c.name: c for c in decision.checks}["accuracy_vs_champion"]
    assert check.threshold == pytest.approx(0.805 - 0.01)


@pytest.mark.parametrize(
    ("champion", "check"),
    [
        ({"accuracy": 0.82}, "accuracy_vs_champion"),
        ({"f1_macro": 0.80}, "f1_macro_vs_champion"),
    ],
)
def test_more_than_max_regression_below_the_champion_is_rejected(champion, check):
    decision = decide(metrics(), metrics(**champion), GATES)
    assert not decision.blessed and failed(decision) == {check}


def test_without_a_champion_only_the_absolute_bars_apply():
    names = {c.name for c in decide(metrics(), None, GATES).checks}
    assert not {"accuracy_vs_champion", "f1_macro_vs_champion"} & names


def test_as_dict_carries_the_decision_and_every_number():
    data = decide(metrics(mean_confidence=0.5), None, GATES).as_dict()
    assert data["blessed"] is False
    assert data["reasons"] == ["mean_confidence 0.5000 < 0.7000"]
    assert {"name", "value", "threshold", "passed"} == set(data["checks"][0])


def test_a_candidate_no_better_than_min_improvement_is_not_blessed():
    gates = GATES.model_copy(update={"min_improvement": 0.01})
    same = decide(metrics(accuracy=0.805), metrics(accuracy=0.80), gates)
    assert not same.blessed and failed(same) == {"accuracy_gain_vs_champion"}
    assert same.reasons == ["accuracy_gain_vs_champion 0.0050 < 0.0100"]
    assert decide(metrics(accuracy=0.82), metrics(accuracy=0.80), gates).blessed


def test_min_improvement_zero_keeps_only_the_regression_bar():
    names = {c.name for c in decide(metrics(), metrics(), GATES).checks}
    assert "accuracy_gain_vs_champion" not in names


def test_a_bar_the_champion_misses_asks_only_for_no_worse_than_the_champion():
    # After a change broke the champion: recall[yes] 0.40 is below the 0.60 bar, but the
    # champion manages 0.30 on the same holdout, so the far better candidate is blessed.
    broken = metrics(accuracy=0.50, f1_macro=0.45, recall={"yes": 0.30})
    better = metrics(accuracy=0.70, f1_macro=0.62, recall={"yes": 0.40})
    decision = decide(better, broken, GATES)
    assert decision.blessed, decision.reasons
    checks = {c.name: c for c in decision.checks}
    assert checks["recall[yes]"].threshold == pytest.approx(0.30)
    assert checks["f1_macro"].threshold == pytest.approx(0.45)
    assert checks["accuracy"].threshold == pytest.approx(0.50)
    assert checks["precision[yes]"].threshold == pytest.approx(0.60)  # the champion passes it
    worse = decide(metrics(recall={"yes": 0.25}), broken, GATES)
    assert failed(worse) == {"recall[yes]"}


def test_min_improvement_is_a_fraction():
    with pytest.raises(ValidationError, match="min_improvement"):
        GateConfig(min_improvement=1.5)


def test_a_gain_of_exactly_min_improvement_passes():
    """410/500 - 400/500 is 0.019999999999999907 in floating point: still the 2 points asked."""
    gates = GATES.model_copy(update={"min_improvement": 0.02})
    exact = decide(metrics(accuracy=410 / 500), metrics(accuracy=400 / 500), gates)
    assert exact.blessed, exact.reasons
    assert replaces(running_gain=0.0, waiting_gain=410 / 500 - 400 / 500, margin=0.02)
    assert not replaces(running_gain=0.0, waiting_gain=0.0199, margin=0.02)
    # A challenger no retraining run measured (registered by hand) is never replaced.
    assert not replaces(running_gain=None, waiting_gain=0.5, margin=0.02)
