"""A self-contained HTML page for a drifted check: what moved, by how much, and a picture.

One file (the chart is an inline PNG), so it opens straight from the MLflow UI's artifact view.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from relearn.config import FeatureType

if TYPE_CHECKING:
    import pandas as pd

    from relearn.config import ModelConfig
    from relearn.drift.profile import ReferenceProfile

TOP_FEATURES = 4
_STAT_COLUMNS = ("psi", "ks", "ks_pvalue", "wasserstein", "mean_shift_std", "js", "chi2_pvalue")


_SCORE_COLUMNS = ("contribution", "weight", "strength")


def _severity(feature: dict[str, Any]) -> tuple[float, bool, float]:
    stats = feature.get("stats") or {}
    return (
        float(feature.get("contribution") or 0.0),
        bool(feature.get("drifted")),
        float(stats.get("psi") or 0.0),
    )


def most_drifted(features: list[dict[str, Any]], limit: int = TOP_FEATURES) -> list[dict]:
    """Assessed features by what they add to the score, then drifted ones, then by PSI."""
    assessed = [f for f in features if f.get("assessed")]
    return sorted(assessed, key=_severity, reverse=True)[:limit]


def _chart_png(
    features: list[dict[str, Any]],
    profile: ReferenceProfile,
    window: pd.DataFrame,
    model_cfg: ModelConfig,
) -> bytes:
    """Reference vs window distribution of each feature: histograms or category shares."""
    kinds = {f.name: f.type for f in model_cfg.features}
    figure = Figure(figsize=(4 * len(features), 3))
    axes = figure.subplots(1, len(features), squeeze=False)
    for axis, feature in zip(axes[0], features, strict=True):
        name = feature["name"]
        if kinds[name] is FeatureType.NUMERIC:
            reference = profile.numeric[name].sample
            current = window[name].dropna().to_numpy()
            bins = np.histogram_bin_edges(np.concatenate([reference, current]), bins=30)
            axis.hist(reference, bins=bins, density=True, alpha=0.5, label="reference")
            axis.hist(current, bins=bins, density=True, alpha=0.5, label="window")
        else:
            reference_profile = profile.categorical[name]
            categories = reference_profile.categories
            counts = window[name].astype("string").value_counts()
            total = max(int(counts.sum()), 1)
            known = set(categories[:-1])
            current = [int(counts.get(c, 0)) / total for c in categories[:-1]]
            current.append(sum(int(n) for c, n in counts.items() if c not in known) / total)
            positions = np.arange(len(categories))
            shares = list(reference_profile.frequencies.values())
            axis.bar(positions - 0.2, shares, width=0.4, label="reference")
            axis.bar(positions + 0.2, current, width=0.4, label="window")
            axis.set_xticks(positions, categories, rotation=30)
        axis.set_title(f"{name} ({'drifted' if feature['drifted'] else 'stable'})")
        axis.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def render_report(
    summary: dict[str, Any],
    features: list[dict[str, Any]],
    profile: ReferenceProfile,
    window: pd.DataFrame,
    model_cfg: ModelConfig,
) -> str:
    """The page: headline (verdict, score, performance), a chart, the per-feature table."""
    top = most_drifted(features)
    chart = ""
    if top:
        png = base64.b64encode(_chart_png(top, profile, window, model_cfg)).decode()
        chart = f'<img alt="most drifted features" src="data:image/png;base64,{png}">'
    columns = ("feature", "type", "rows", "drifted", *_SCORE_COLUMNS, *_STAT_COLUMNS)
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for feature in sorted(features, key=_severity, reverse=True):
        stats = feature.get("stats") or {}
        cells = [
            feature["name"],
            feature["type"],
            feature["rows"],
            ", ".join(feature.get("effects") or []) if feature.get("drifted") else "",
            *(feature.get(c) for c in _SCORE_COLUMNS),
            *(stats.get(c) for c in _STAT_COLUMNS),
        ]
        style = ' style="background:#fde2e1"' if feature.get("drifted") else ""
        row = "".join(f"<td>{html.escape(_number(v))}</td>" for v in cells)
        body.append(f"<tr{style}>{row}</tr>")
    facts = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(_number(v))}</li>" for k, v in summary.items()
    )
    title = f"Drift report: {model_cfg.name}"
    explain = (
        "<p>score = sum over drifted features of weight (share of the champion's permutation "
        "importance) x strength (largest effect / its threshold, at most 3), at most 1.</p>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><ul>{facts}</ul>{explain}{chart}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>"
    )
