"""Calibration metrics of class probabilities: ECE, MCE, ACE, NLL, Brier.

The binned metrics are *top-label*: each sample contributes its confidence
(the largest predicted probability) and whether the predicted class (the
column of that probability) is the true one. skspro bins the samples (exact
edges, bins closed on the left, the last one on both sides; one
implementation for equal-width and equal-mass bins) and netcal reduces the
bins to the metric; see :func:`_netcal_binned` for what differs from calling
netcal directly.
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

    Equal-width edge ``k`` is ``k / n_bins`` computed by one division, so it
    is the double nearest to the exact fraction (``np.linspace`` is not:
    its edge 3 of 10 is ``0.30000000000000004``, which sends a confidence of
    exactly 0.3 one bin low). Quantile edges can repeat when confidences are
    tied (e.g. many saturated at 1.0); tied confidences then share one bin
    and the repeated edges leave empty bins, which do not count.
    """
    fractions = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    if strategy == "uniform":
        return fractions
    edges = np.quantile(confidence, fractions)
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def _bin_index(confidence: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of every confidence: bins are ``[edge_i, edge_i+1)``, the last one also closed on the right.

    A confidence equal to an edge goes to the bin that starts there; 1.0
    goes to the last bin and 0.0 to the first.
    """
    n_bins = len(edges) - 1
    return np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)


def _bin_histograms(
    confidence: np.ndarray, correct: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, accuracy and mean confidence of every bin (0 for empty bins)."""
    n_bins = len(edges) - 1
    bin_of = _bin_index(confidence, edges)
    counts = np.bincount(bin_of, minlength=n_bins).astype(np.float64)
    accuracy_sum = np.bincount(bin_of, weights=correct, minlength=n_bins)
    confidence_sum = np.bincount(bin_of, weights=confidence, minlength=n_bins)
    filled = counts > 0
    accuracy = np.divide(accuracy_sum, counts, out=np.zeros(n_bins), where=filled)
    mean_confidence = np.divide(confidence_sum, counts, out=np.zeros(n_bins), where=filled)
    return counts, accuracy, mean_confidence


def _bin_statistics(
    confidence: np.ndarray, correct: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, accuracy and mean confidence of every non-empty bin (see :func:`_bin_index`)."""
    counts, accuracy, mean_confidence = _bin_histograms(confidence, correct, edges)
    filled = counts > 0
    return counts[filled].astype(np.int64), accuracy[filled], mean_confidence[filled]


def _netcal_binned(
    metric: str, counts: np.ndarray, accuracy: np.ndarray, mean_confidence: np.ndarray
) -> float:
    """ECE / MCE / ACE of binned statistics, reduced by netcal.

    The samples are binned by :func:`_bin_histograms` (exact edges, one
    implementation for both strategies); netcal's ``process`` turns the
    per-bin counts, accuracies and confidences into the metric. Calling
    netcal's ``measure`` instead would bin with its own edges: ``np.linspace``
    for equal widths (inexact, see :func:`_bin_edges`), and quantiles handed
    to scipy's ``binned_statistic_dd``, which raises as soon as two edges
    coincide (tied confidences). It would also read any ``y`` with at most
    two distinct values as a binary problem (measuring column 1 instead of
    the top label); binned statistics carry no labels, so that cannot happen.
    """
    from netcal.metrics import ACE, ECE, MCE  # netcal takes ~2 s to import: only when needed

    measure = {"ece": ECE, "mce": MCE, "ace": ACE}[metric](bins=len(counts))
    miscalibration, *_ = measure.process(
        metric, accuracy, mean_confidence, np.zeros_like(accuracy), num_samples_hist=counts
    )
    return float(miscalibration)


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
    histograms = _bin_histograms(confidence, correct, _bin_edges(confidence, n_bins, strategy))
    return _netcal_binned(metric, *histograms)


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
    filled bins.

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
    adaptive-binning variant.

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
