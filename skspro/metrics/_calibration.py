"""Calibration metrics of class probabilities: ECE, MCE, ACE, NLL, Brier.

The binned metrics are *top-label*: each sample contributes its confidence
(the largest predicted probability) and whether the predicted class (the
column of that probability) is the true one. netcal computes them for
equal-width bins; see :func:`_netcal_binned` for how its traps are avoided.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._docstrings import fill_doc
from ._validation import check_n_bins, check_targets_and_proba

__all__ = [
    "average_calibration_error",
    "brier_score",
    "expected_calibration_error",
    "maximum_calibration_error",
    "negative_log_likelihood",
]


def _top_label(
    y_true: ArrayLike, y_proba: ArrayLike, labels: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence of the predicted class and whether it is correct (as 0/1 floats)."""
    checked = check_targets_and_proba(y_true, y_proba, labels)
    confidence = checked.proba.max(axis=1)
    correct = (checked.proba.argmax(axis=1) == checked.y_index).astype(np.float64)
    return confidence, correct


def _bin_edges(confidence: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Edges of ``n_bins`` bins on [0, 1]: equal width, or at the quantiles of ``confidence``.

    Quantile edges can repeat when confidences are tied (e.g. many saturated
    at 1.0); tied confidences then share one bin and the repeated edges leave
    empty bins, which do not count.
    """
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    edges = np.quantile(confidence, np.linspace(0.0, 1.0, n_bins + 1))
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def _bin_statistics(
    confidence: np.ndarray, correct: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, accuracy and mean confidence of every non-empty bin.

    Bins are closed on the left, ``[edge_i, edge_i+1)``, the last one also on
    the right -- netcal's convention (it bins with ``np.histogramdd``).
    """
    n_bins = len(edges) - 1
    bin_of = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(bin_of, minlength=n_bins)
    accuracy_sum = np.bincount(bin_of, weights=correct, minlength=n_bins)
    confidence_sum = np.bincount(bin_of, weights=confidence, minlength=n_bins)
    filled = counts > 0
    counts = counts[filled]
    return counts, accuracy_sum[filled] / counts, confidence_sum[filled] / counts


def _netcal_binned(metric: str, confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    """ECE / MCE / ACE with netcal on equal-width bins.

    netcal decides between a binary and a multiclass problem from the
    labels: any ``y`` with at most two distinct values is "binary", and then
    it either raises (more than two columns) or measures the calibration of
    column 1 instead of the top label (two columns). We never hand it class
    labels: we pass the top-label confidence and the 0/1 correctness in its
    detection form (``detection=True``: one feature, ``y`` is whether the
    prediction was right), which bins exactly these two vectors whatever the
    number of classes or of labels present.
    """
    from netcal.metrics import ACE, ECE, MCE  # netcal takes ~2 s to import: only when needed

    measure_class = {"ece": ECE, "mce": MCE, "ace": ACE}[metric]
    measure = measure_class(bins=int(n_bins), equal_intervals=True, detection=True)
    return float(measure.measure(confidence[:, np.newaxis], correct))


def _binned_calibration_error(
    metric: str,
    y_true: ArrayLike,
    y_proba: ArrayLike,
    n_bins: int,
    strategy: str,
    labels: ArrayLike | None,
) -> float:
    n_bins = check_n_bins(n_bins, strategy)
    confidence, correct = _top_label(y_true, y_proba, labels)
    if strategy == "uniform":
        return _netcal_binned(metric, confidence, correct, n_bins)
    # Equal-mass bins are computed here, not by netcal (equal_intervals=False): netcal hands its
    # quantile edges to scipy's binned_statistic_dd, which raises ("The smallest edge difference
    # is numerically 0") as soon as two edges coincide, i.e. whenever many confidences are tied,
    # as with an over-confident network saturating at 1.0. Our edges are netcal's (quantiles of
    # the confidences, end points at 0 and 1), with tied confidences kept in one bin.
    counts, accuracy, mean_confidence = _bin_statistics(
        confidence, correct, _bin_edges(confidence, n_bins, strategy)
    )
    gaps = np.abs(accuracy - mean_confidence)
    if metric == "ece":
        return float(np.sum(counts * gaps) / np.sum(counts))
    if metric == "mce":
        return float(np.max(gaps))
    return float(np.mean(gaps))


@fill_doc
def expected_calibration_error(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    n_bins: int = 15,
    strategy: str = "uniform",
    labels: ArrayLike | None = None,
) -> float:
    """Top-label expected calibration error (ECE).

    Samples are grouped into bins by confidence, the largest predicted
    probability; ECE is the mean over bins, weighted by their share of the
    samples, of ``|accuracy(bin) - mean confidence(bin)|``. 0 is perfect.
    Equal-width bins are computed with netcal.

    Parameters
    ----------
    {y_true}
    {y_proba}
    {binning}
    {labels}

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        On malformed probabilities (NaN, negative, rows not summing to 1),
        mismatched lengths, or labels that do not match the columns.

    See Also
    --------
    maximum_calibration_error, average_calibration_error
    sklearn.calibration.calibration_curve : Per-bin curve of a binary problem.

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. On calibration of modern
    neural networks. ICML 2017.

    Examples
    --------
    Always 90 % confident, right 60 % of the time: ECE 0.3.

    >>> import numpy as np
    >>> from skspro.metrics import expected_calibration_error
    >>> y_true = np.array([0] * 6 + [1] * 4)
    >>> y_proba = np.tile([0.9, 0.1], (10, 1))
    >>> round(expected_calibration_error(y_true, y_proba), 6)
    0.3
    """
    return _binned_calibration_error("ece", y_true, y_proba, n_bins, strategy, labels)


@fill_doc
def maximum_calibration_error(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    n_bins: int = 15,
    strategy: str = "uniform",
    labels: ArrayLike | None = None,
) -> float:
    """Top-label maximum calibration error (MCE).

    The largest ``|accuracy(bin) - mean confidence(bin)|`` over non-empty
    confidence bins: the worst-case miscalibration. Sensitive to sparsely
    filled bins. Equal-width bins are computed with netcal.

    Parameters
    ----------
    {y_true}
    {y_proba}
    {binning}
    {labels}

    Returns
    -------
    float
        In [0, 1].

    See Also
    --------
    expected_calibration_error, average_calibration_error

    References
    ----------
    M. P. Naeini, G. Cooper, M. Hauskrecht. Obtaining well calibrated
    probabilities using Bayesian binning. AAAI 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from skspro.metrics import maximum_calibration_error
    >>> y_true = np.array([0, 0, 1, 1])
    >>> y_proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7]])
    >>> round(maximum_calibration_error(y_true, y_proba, n_bins=10), 6)
    0.3
    """
    return _binned_calibration_error("mce", y_true, y_proba, n_bins, strategy, labels)


@fill_doc
def average_calibration_error(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    n_bins: int = 15,
    strategy: str = "uniform",
    labels: ArrayLike | None = None,
) -> float:
    """Top-label average calibration error (ACE).

    The unweighted mean of ``|accuracy(bin) - mean confidence(bin)|`` over
    the non-empty confidence bins: unlike ECE, sparsely filled bins weigh as
    much as full ones. With ``strategy="quantile"`` this is the
    adaptive-binning variant. Equal-width bins are computed with netcal.

    Parameters
    ----------
    {y_true}
    {y_proba}
    {binning}
    {labels}

    Returns
    -------
    float
        In [0, 1].

    See Also
    --------
    expected_calibration_error, maximum_calibration_error

    References
    ----------
    J. Nixon, M. W. Dusenberry, L. Zhang, G. Jerfel, D. Tran. Measuring
    calibration in deep learning. CVPR Workshops 2019.

    Examples
    --------
    One bin off by 0.1 (2 samples), one by 0.3 (2 samples), one perfect
    (4 samples): ACE is (0.1 + 0.3 + 0) / 3.

    >>> import numpy as np
    >>> from skspro.metrics import average_calibration_error
    >>> y_true = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    >>> y_proba = np.array([[0.9, 0.1]] * 2 + [[0.3, 0.7]] * 2 + [[0.5, 0.5]] * 4)
    >>> round(average_calibration_error(y_true, y_proba, n_bins=10), 6)
    0.133333
    """
    return _binned_calibration_error("ace", y_true, y_proba, n_bins, strategy, labels)


@fill_doc
def negative_log_likelihood(
    y_true: ArrayLike, y_proba: ArrayLike, *, labels: ArrayLike | None = None
) -> float:
    """Mean negative log-likelihood of the true labels (log loss, in nats).

    ``-mean(log p[true label])``. Probabilities are clipped below at the
    machine epsilon of their dtype, as :func:`sklearn.metrics.log_loss` does,
    so the two agree and :data:`nll_scorer` equals sklearn's
    ``"neg_log_loss"`` scorer on valid probabilities.

    Parameters
    ----------
    {y_true}
    {y_proba}
    {labels}

    Returns
    -------
    float
        Non-negative; lower is better.

    See Also
    --------
    sklearn.metrics.log_loss : The same quantity.

    Examples
    --------
    >>> import numpy as np
    >>> from skspro.metrics import negative_log_likelihood
    >>> y_proba = np.array([[0.5, 0.5], [0.9, 0.1]])
    >>> round(negative_log_likelihood(["cat", "dog"], y_proba), 4)  # -(log 0.5 + log 0.1) / 2
    1.4979
    """
    checked = check_targets_and_proba(y_true, y_proba, labels)
    true_proba = checked.proba[np.arange(len(checked.y_index)), checked.y_index]
    return float(-np.mean(np.log(np.clip(true_proba, checked.eps, None))))


@fill_doc
def brier_score(y_true: ArrayLike, y_proba: ArrayLike, *, labels: ArrayLike | None = None) -> float:
    """Multiclass Brier score: mean over samples of the squared error to the one-hot label.

    ``mean_i sum_k (p_ik - [y_i = k])^2``, in [0, 2]. This is Brier's
    original definition and what the ensemble literature reports. For three
    or more classes it equals :func:`sklearn.metrics.brier_score_loss`; for
    two classes sklearn (``scale_by_half="auto"``) reports half of it, the
    squared error of the positive-class probability alone.

    Parameters
    ----------
    {y_true}
    {y_proba}
    {labels}

    Returns
    -------
    float
        In [0, 2]; lower is better.

    See Also
    --------
    sklearn.metrics.brier_score_loss

    References
    ----------
    G. W. Brier. Verification of forecasts expressed in terms of probability.
    Monthly Weather Review, 1950.

    Examples
    --------
    >>> import numpy as np
    >>> from skspro.metrics import brier_score
    >>> y_proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6]])
    >>> round(brier_score([0, 1], y_proba, labels=[0, 1, 2]), 4)  # (0.06 + 1.04) / 2
    0.55
    """
    checked = check_targets_and_proba(y_true, y_proba, labels)
    one_hot = np.zeros_like(checked.proba)
    one_hot[np.arange(len(checked.y_index)), checked.y_index] = 1.0
    return float(np.mean(np.sum((checked.proba - one_hot) ** 2, axis=1)))
