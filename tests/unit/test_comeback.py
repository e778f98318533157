"""Which previous champion comes back when today's decays (``relearn.drift.comeback.choose``):
the gates' bars and a significant paired (McNemar) gain on the rows since the decline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from relearn.abtest.stats import mcnemar_bound, mcnemar_pvalue
from relearn.config import DriftConfig, load_config
from relearn.drift.comeback import choose

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cfg():
    return load_config(ROOT / "relearn.yaml").model("churn")


def _answers(cfg, truth: np.ndarray, right: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    """Probabilities that answer ``truth`` where ``right``, the other class elsewhere."""
    first = np.asarray(cfg.classes[0], dtype=object)
    says_first = (truth == first) == right
    return np.column_stack(
        [
            np.where(says_first, confidence, 1 - confidence),
            np.where(says_first, 1 - confidence, confidence),
        ]
    )


def _truth(cfg, n: int) -> np.ndarray:
    return np.asarray([cfg.classes[i % 2] for i in range(n)], dtype=object)


def test_mcnemar_counts_only_the_rows_exactly_one_model_got_right():
    assert mcnemar_pvalue(10, 0) == pytest.approx(0.5**10)
    assert mcnemar_pvalue(0, 0) == 1.0  # no discordant row: no evidence
    assert mcnemar_pvalue(0, 10) == pytest.approx(1.0)
    # From accuracies alone: the most discordant pairing (55 vs 22 of 100 rows) bounds p.
    assert mcnemar_bound(100, 0.78, 0.45) == pytest.approx(mcnemar_pvalue(55, 22))
    assert mcnemar_bound(100, 0.78, 0.45) >= mcnemar_pvalue(40, 7)  # fewer discordant rows


def test_the_most_accurate_blessed_and_significant_previous_champion_comes_back(cfg):
    n = 400
    truth = _truth(cfg, n)
    rows = np.arange(n)
    champion = _answers(cfg, truth, rows % 2 == 0)  # 50 %
    previous = {
        "1": _answers(cfg, truth, rows % 10 != 0),  # 90 %
        "3": _answers(cfg, truth, rows % 5 != 0),  # 80 %
    }
    found = choose(cfg, truth.tolist(), champion, previous)
    assert found is not None and found.version == "1"
    assert (found.rows, found.accuracy, found.champion_accuracy) == (n, 0.9, 0.5)
    assert found.pvalue < cfg.drift.comeback_significance
    assert found.reason.startswith("comeback of v1, a previous champion: accuracy 0.900")


def test_a_gain_the_gates_bless_but_too_few_rows_support_does_not_bring_a_version_back(cfg):
    n = 100  # exactly gates.min_eval_samples
    truth = _truth(cfg, n)
    rows = np.arange(n)
    champion = _answers(cfg, truth, rows >= 25)  # 75 %
    # 80 %: +5 points (the gates' bar is 2), from 8 rows only it gets right against 3 only
    # the champion gets right: McNemar p = 0.11.
    candidate = _answers(cfg, truth, (rows < 8) | ((rows >= 25) & (rows < 97)))
    assert choose(cfg, truth.tolist(), champion, {"1": candidate}) is None
    loose = cfg.model_copy(
        update={"drift": cfg.drift.model_copy(update={"comeback_significance": 0.2})}
    )
    found = choose(loose, truth.tolist(), champion, {"1": candidate})
    assert found is not None and found.pvalue == pytest.approx(232 / 2048)


def test_no_comeback_below_the_gates_bars_or_on_too_few_rows(cfg):
    truth = _truth(cfg, 400)
    rows = np.arange(400)
    champion = _answers(cfg, truth, rows % 2 == 0)
    within_noise = _answers(cfg, truth, rows % 2 == 0)  # the same answers: no gain
    assert choose(cfg, truth.tolist(), champion, {"1": within_noise}) is None
    few = _truth(cfg, cfg.gates.min_eval_samples - 1)
    best = _answers(cfg, few, np.ones(len(few), dtype=bool))
    worst = _answers(cfg, few, np.zeros(len(few), dtype=bool))
    assert choose(cfg, few.tolist(), worst, {"1": best}) is None
    assert choose(cfg, truth.tolist(), champion, {}) is None


def test_the_comeback_options_are_validated():
    assert DriftConfig(comeback_versions=0).comeback_versions == 0  # off
    for bad in ({"comeback_versions": -1}, {"comeback_significance": 0}):
        with pytest.raises(ValidationError):
            DriftConfig(**bad)
