"""A small SVG reliability diagram (accuracy against confidence), no plotting library needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relearn.analysis.calibration import Calibration

_SIZE, _PAD = 240, 30


def reliability_svg(calibration: Calibration, title: str) -> str:
    """Bars of accuracy per confidence bin over the diagonal of perfect calibration."""
    plot = _SIZE - 2 * _PAD

    def x(value: float) -> float:
        return _PAD + value * plot

    def y(value: float) -> float:
        return _SIZE - _PAD - value * plot

    bars = "".join(
        f'<rect x="{x(b.low):.1f}" y="{y(b.accuracy):.1f}" width="{(b.high - b.low) * plot:.1f}" '
        f'height="{b.accuracy * plot:.1f}" fill="#4c78a8" stroke="#fff">'
        f"<title>{b.low:.1f}-{b.high:.1f}: accuracy {b.accuracy:.2f}, "
        f"confidence {b.mean_confidence:.2f}, {b.rows} rows</title></rect>"
        for b in calibration.bins
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SIZE}" height="{_SIZE}" '
        f'font-family="sans-serif" font-size="10">'
        f'<text x="{_PAD}" y="14">{_escape(title)} (ECE {calibration.ece:.3f})</text>'
        f'<rect x="{_PAD}" y="{_PAD}" width="{plot}" height="{plot}" fill="none" stroke="#999"/>'
        f"{bars}"
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#e45756" '
        'stroke-dasharray="4 3"/>'
        f'<text x="{_SIZE / 2 - 25}" y="{_SIZE - 8}">confidence</text>'
        f'<text x="4" y="{_SIZE / 2}" transform="rotate(-90 10 {_SIZE / 2})">accuracy</text>'
        "</svg>"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
