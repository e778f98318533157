"""Decision-quality replays for ``bench/decision_quality.py`` (bench only, not the product)."""
