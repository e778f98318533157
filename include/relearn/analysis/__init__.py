"""Error analysis: where a champion is wrong, and what would fix it.

For a retraining run's holdout (champion and candidate on the same rows) and for each day of
labelled predictions (champion, and the challenger of a live A/B test), ``report.analyze``
finds the confusion pairs, the segments — each categorical value, each numeric quantile bin
and two-way combinations of them — whose error rate is significantly above the overall rate
(one-sided binomial test, Benjamini-Hochberg across every segment tested, Wilson intervals),
and the calibration (reliability curve, expected calibration error); ``suggest`` turns that
into ranked sentences. ``run`` reads the windows and stores the results (``store.analysis``,
an MLflow artifact of the retraining run); ``latest_analysis`` is what the page shows.

Modules: ``stats`` (the tests), ``levels`` (features as levels: values and quantile bins),
``segments`` (the search), ``calibration`` (confusion and reliability), ``report`` (typed
results and ``analyze``), ``suggest``, ``chart`` (an SVG), ``run`` (windows and storage).
This ``__init__`` stays import-free.
"""
