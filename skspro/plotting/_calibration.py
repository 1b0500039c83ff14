"""Reliability diagrams and accuracy / calibration under increasing dataset shift."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ..metrics import expected_calibration_error
from ..metrics._calibration import _bin_edges, _bin_index, _bin_statistics, _top_label
from ..metrics._validation import check_n_bins

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_shift_curve", "reliability_diagram"]

_METRIC_NAMES = {"ece": "ECE", "mce": "MCE", "ace": "ACE", "nll": "NLL", "brier": "Brier score"}


def _axes(ax: Axes | None) -> Axes:
    """``ax`` itself, or the Axes of a new pyplot figure (so notebooks display it)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5, 5))[1]


def reliability_diagram(
    y_true: ArrayLike,
    y_proba: ArrayLike | Mapping[str, ArrayLike],
    *,
    n_bins: int = 15,
    strategy: str = "uniform",
    labels: ArrayLike | None = None,
    counts: str | None = "histogram",
    ax: Axes | None = None,
) -> Axes:
    """Accuracy against confidence, per confidence bin, for one or several models.

    For each model, one line through the points (mean confidence, accuracy)
    of the non-empty bins of its top-label confidence; a perfectly
    calibrated model lies on the dashed diagonal, an over-confident one
    below it. The legend gives each model's ECE, from the same bins. How
    many samples each bin holds is shown under the curve (a histogram of the
    fraction of samples per bin) or by the markers' areas: a bin of three
    samples far from the diagonal matters less than it looks.

    netcal's ``ReliabilityDiagram`` is not used: it fills a whole figure
    with its own subplots for one model per call (there is no ``ax``), and
    it would read a batch in which only two classes occur as a binary
    problem. Drawing here overlays several models on any Axes, with exactly
    the bins of :func:`skspro.metrics.expected_calibration_error`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples, n_classes) or dict of {str: array-like}
        Predicted probabilities of one model, or of several models by name.
    n_bins : int, default=15
        Number of confidence bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins (see
        :func:`~skspro.metrics.expected_calibration_error`).
    labels : array-like of shape (n_classes,), default=None
        Label of each column (e.g. ``model.classes_``).
    counts : {"histogram", "markers"} or None, default="histogram"
        ``"histogram"``: for each model, the fraction of its samples in each
        bin as a filled step histogram on the same axis (``ax.patches``).
        ``"markers"``: marker areas proportional to the bins' counts.
        ``None``: neither.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; ``None`` makes a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        With one line for the diagonal, then one per model (and, with
        ``counts="histogram"``, one histogram patch per model; with
        ``"markers"``, one scatter collection per model).

    Examples
    --------
    >>> import numpy as np
    >>> from skspro.plotting import reliability_diagram
    >>> rng = np.random.default_rng(0)
    >>> y_proba = rng.dirichlet([1, 1, 1], size=200)
    >>> y_true = rng.integers(0, 3, size=200)
    >>> flatter = y_proba ** 0.5 / (y_proba ** 0.5).sum(axis=1, keepdims=True)
    >>> ax = reliability_diagram(y_true, {"sharp": y_proba, "flat": flatter})
    >>> len(ax.lines)
    3
    """
    n_bins = check_n_bins(n_bins, strategy)
    if counts not in ("histogram", "markers", None):
        raise ValueError(f"counts must be 'histogram', 'markers' or None; got {counts!r}.")
    models = dict(y_proba) if isinstance(y_proba, Mapping) else {"model": y_proba}
    if not models:
        raise ValueError("y_proba is an empty dict; give at least one model's probabilities.")
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfect calibration")
    for name, proba in models.items():
        confidence, correct = _top_label(y_true, proba, labels)
        edges = _bin_edges(confidence, n_bins, strategy)
        in_bin, accuracy, mean_confidence = _bin_statistics(confidence, correct, edges)
        ece = expected_calibration_error(y_true, proba, n_bins=n_bins, strategy=strategy, labels=labels)
        (line,) = ax.plot(
            mean_confidence,
            accuracy,
            marker="o" if counts != "markers" else None,
            markersize=4,
            label=f"{name} (ECE {ece:.3f})",
        )
        if counts == "markers":
            ax.scatter(
                mean_confidence,
                accuracy,
                s=400 * in_bin / in_bin.max(),
                color=line.get_color(),
                alpha=0.6,
                zorder=3,
            )
        elif counts == "histogram":
            all_counts = np.bincount(_bin_index(confidence, edges), minlength=n_bins)
            ax.stairs(
                all_counts / len(confidence),
                edges,
                fill=True,
                alpha=0.2,
                color=line.get_color(),
                label=f"{name}: fraction of samples per bin",
            )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence (top-label probability)",
        ylabel="accuracy",
        title="Reliability diagram",
    )
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_shift_curve(results: pd.DataFrame, *, metric: str = "accuracy", ax: Axes | None = None) -> Axes:
    """A metric against corruption severity, one line per model.

    Rows with the same model and severity (e.g. one per corruption type)
    are summarised by their mean (the line) and their interquartile range
    (a shaded band, named in the legend), after the dataset-shift benchmark of Ovadia et al.
    (2019). Severity 0 may hold the clean data.

    Parameters
    ----------
    results : pandas.DataFrame
        Long format, with columns ``model``, ``severity`` and ``metric``
        (other columns, e.g. ``corruption``, are ignored).
    metric : str, default="accuracy"
        The column to plot, e.g. ``"accuracy"``, ``"ece"``, ``"nll"``.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; ``None`` makes a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        With one line per model, in order of first appearance.

    References
    ----------
    Y. Ovadia et al. Can you trust your model's uncertainty? Evaluating
    predictive uncertainty under dataset shift. NeurIPS 2019.

    Examples
    --------
    >>> import pandas as pd
    >>> from skspro.plotting import plot_shift_curve
    >>> results = pd.DataFrame({
    ...     "model": ["A"] * 3 + ["B"] * 3,
    ...     "severity": [0, 1, 2] * 2,
    ...     "accuracy": [0.95, 0.8, 0.6, 0.96, 0.85, 0.7],
    ... })
    >>> ax = plot_shift_curve(results, metric="accuracy")
    >>> [line.get_label() for line in ax.lines]
    ['A', 'B']
    """
    if not isinstance(results, pd.DataFrame):
        raise ValueError(f"results must be a pandas DataFrame; got {type(results).__name__}.")
    missing = [column for column in ("model", "severity", metric) if column not in results.columns]
    if missing:
        raise ValueError(
            f"results lacks the column(s) {missing}; it has {list(results.columns)}. Give one row per model "
            "and severity (and corruption) with the metric in a column named like metric=."
        )
    if results.empty:
        raise ValueError("results has no rows.")
    ax = _axes(ax)
    for model, rows in results.groupby("model", sort=False):
        by_severity = rows.groupby("severity")[metric]
        mean = by_severity.mean().sort_index()
        lower, upper = by_severity.quantile(0.25).sort_index(), by_severity.quantile(0.75).sort_index()
        severity = mean.index.to_numpy(dtype=float)
        (line,) = ax.plot(severity, mean.to_numpy(), marker="o", label=str(model))
        if (upper > lower).any():
            ax.fill_between(
                severity,
                lower.to_numpy(),
                upper.to_numpy(),
                color=line.get_color(),
                alpha=0.15,
                label=f"{model}: interquartile range over corruptions",
            )
    name = _METRIC_NAMES.get(metric, metric)
    ax.set(xlabel="corruption severity", ylabel=name, title=f"{name} under dataset shift")
    ax.set_xticks(np.unique(results["severity"].to_numpy(dtype=float)))
    ax.legend(fontsize="small")
    return ax
