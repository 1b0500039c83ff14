"""Predictions and uncertainty of a classifier over a 2-D input plane."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..metrics._uncertainty import mutual_information, predictive_entropy
from ._calibration import _axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_decision_surface"]

_KINDS = ("proba", "entropy", "mutual_information")


def _proba_networks(estimator: Any, grid: np.ndarray) -> np.ndarray:
    """Per-network probabilities of the estimator, or of a Pipeline's final step."""
    if hasattr(estimator, "predict_proba_networks"):
        return estimator.predict_proba_networks(grid)
    steps = getattr(estimator, "steps", None)
    if steps and hasattr(steps[-1][1], "predict_proba_networks"):
        return steps[-1][1].predict_proba_networks(estimator[:-1].transform(grid))
    raise ValueError(
        f"kind='mutual_information' needs per-network predictions, but {type(estimator).__name__} has no "
        "predict_proba_networks (ESPROClassifier and DeepEnsembleClassifier have). Use kind='entropy'."
    )


def plot_decision_surface(
    estimator: Any,
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    kind: str = "proba",
    grid_resolution: int = 100,
    ax: Axes | None = None,
) -> Axes:
    """Filled contours of a fitted classifier's output over the plane of 2-D data.

    The paper's two-spirals figures: where the ensemble is sure, and where
    its networks disagree.

    * ``kind="proba"``: probability of ``classes_[1]`` for two classes, the
      confidence (largest probability) for more;
    * ``kind="entropy"``: predictive entropy of ``predict_proba`` (nats);
    * ``kind="mutual_information"``: mutual information between label and
      network, from ``predict_proba_networks`` (epistemic uncertainty).

    Parameters
    ----------
    estimator : fitted classifier
        Any classifier with ``predict_proba``, fitted on two features; for
        ``"mutual_information"`` one with ``predict_proba_networks`` (or a
        Pipeline ending in one).
    X : array-like of shape (n_samples, 2)
        Data whose range (plus a margin of 10 %) sets the plotted area.
    y : array-like of shape (n_samples,), default=None
        If given, the points of ``X`` are drawn coloured by class.
    kind : {"proba", "entropy", "mutual_information"}, default="proba"
        What to plot.
    grid_resolution : int, default=100
        Grid points per axis.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; ``None`` makes a new figure. A colour bar is added
        beside it.

    Returns
    -------
    matplotlib.axes.Axes
        Holding the contour set, then one scatter per class when ``y`` is
        given.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skspro.datasets import make_two_spirals
    >>> from skspro.plotting import plot_decision_surface
    >>> X, y = make_two_spirals(300, random_state=0)
    >>> model = KNeighborsClassifier(15).fit(X, y)
    >>> ax = plot_decision_surface(model, X, y, kind="entropy", grid_resolution=40)
    >>> len(ax.collections)  # the contours and two classes of points
    3
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}; got {kind!r}.")
    if isinstance(grid_resolution, bool) or not isinstance(grid_resolution, int) or grid_resolution < 2:
        raise ValueError(f"grid_resolution must be an integer >= 2; got {grid_resolution!r}.")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        raise ValueError(
            f"plot_decision_surface needs 2-D data shaped (n_samples, 2); got shape {X.shape}. Project "
            "higher-dimensional data first, or plot two features."
        )
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"y must be 1-D with one label per row of X ({len(X)}); got shape {y.shape}.")
    low, high = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * np.where(high > low, high - low, 1.0)
    xx, yy = np.meshgrid(
        np.linspace(low[0] - margin[0], high[0] + margin[0], grid_resolution),
        np.linspace(low[1] - margin[1], high[1] + margin[1], grid_resolution),
    )
    grid = np.column_stack([xx.ravel(), yy.ravel()])

    limits = {}
    if kind == "mutual_information":
        values = mutual_information(_proba_networks(estimator, grid))
        label, cmap = "mutual information", "magma"
    else:
        proba = estimator.predict_proba(grid)
        if kind == "entropy":
            values, label, cmap = predictive_entropy(proba), "predictive entropy", "magma"
        elif proba.shape[1] == 2:
            values, label, cmap = proba[:, 1], f"P(y = {estimator.classes_[1]!r})", "RdBu_r"
            limits = {"vmin": 0.0, "vmax": 1.0}
        else:
            values, label, cmap = proba.max(axis=1), "confidence", "viridis"

    ax = _axes(ax)
    contours = ax.contourf(xx, yy, values.reshape(xx.shape), levels=20, cmap=cmap, **limits)
    ax.figure.colorbar(contours, ax=ax, label=label)
    if y is not None:
        for cls in np.unique(y):
            members = y == cls
            ax.scatter(X[members, 0], X[members, 1], s=8, edgecolors="white", linewidths=0.3, label=str(cls))
        ax.legend(title="class", fontsize="small", loc="upper right")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=label)
    return ax
