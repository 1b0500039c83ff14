"""Selective classification: the risk of a model that may abstain on its least confident rows.

A selective classifier predicts only where its confidence is at least a
threshold and abstains elsewhere. Sweeping the threshold from high to low
traces the *risk-coverage curve*: coverage is the fraction of rows it
predicts on, selective risk the error rate among them (Geifman & El-Yaniv,
2017). Its area (AURC) summarises the curve in one number; the area under
the *generalised* risk (errors among predicted rows over all rows, AUGRC;
Traub et al., 2024) does not overweight the few most confident rows.

Confidence is the top-label probability by default; any score that is
larger where the model is more sure can be passed instead (e.g. minus the
mutual information of :func:`~skspro.metrics.mutual_information`). Rows with
tied confidence are accepted or rejected together, so the curve has one
point per distinct confidence.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from .._docstrings import fill_doc
from ._validation import check_targets_and_proba

__all__ = ["RiskCoverage", "aurc", "augrc", "coverage_at_risk", "risk_coverage_curve"]


class RiskCoverage(NamedTuple):
    """The risk-coverage curve (see :func:`risk_coverage_curve`)."""

    coverage: np.ndarray
    risk: np.ndarray
    generalized_risk: np.ndarray
    thresholds: np.ndarray


def _confidence_and_errors(y_true, y_proba, confidence, labels) -> tuple[np.ndarray, np.ndarray]:
    checked = check_targets_and_proba(y_true, y_proba, labels)
    errors = (checked.proba.argmax(axis=1) != checked.y_index).astype(np.float64)
    if confidence is None:
        return checked.proba.max(axis=1), errors
    scores = np.asarray(confidence, dtype=np.float64)
    if scores.shape != errors.shape:
        raise ValueError(
            f"confidence must hold one score per row of y_proba ({errors.shape[0]}); "
            f"got shape {scores.shape}."
        )
    if not np.isfinite(scores).all():
        raise ValueError("confidence contains NaN or infinite values; fix or drop those rows.")
    return scores, errors


@fill_doc
def risk_coverage_curve(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    confidence: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> RiskCoverage:
    """Selective risk against coverage, one point per distinct confidence.

    Parameters
    ----------
    {y_true}
    {y_proba}
    confidence : array-like of shape (n_samples,), default=None
        Score by which rows are accepted (larger: more sure). ``None``: the
        top-label probability of ``y_proba``.
    {labels}

    Returns
    -------
    RiskCoverage
        Named tuple of arrays, from the most confident threshold down:
        ``coverage`` (fraction of rows accepted), ``risk`` (error rate among
        accepted rows), ``generalized_risk`` (errors among accepted rows
        over all rows) and ``thresholds`` (rows with ``confidence >=
        threshold`` are accepted). The last point has coverage 1 and the
        model's error rate as risk.

    See Also
    --------
    aurc, augrc, coverage_at_risk

    References
    ----------
    Y. Geifman, R. El-Yaniv. Selective classification for deep neural
    networks. NeurIPS 2017.

    Examples
    --------
    >>> from skspro.metrics import risk_coverage_curve
    >>> curve = risk_coverage_curve([0, 1, 1, 0], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    >>> curve.coverage, curve.risk
    (array([0.25, 0.5 , 0.75, 1.  ]), array([0.        , 0.        , 0.33333333, 0.5       ]))
    """
    scores, errors = _confidence_and_errors(y_true, y_proba, confidence, labels)
    order = np.argsort(-scores, kind="stable")
    scores, errors = scores[order], errors[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]
    accepted = last_of_tie + 1.0
    cumulative_errors = np.cumsum(errors)[last_of_tie]
    n = float(len(scores))
    risk, generalized = cumulative_errors / accepted, cumulative_errors / n
    return RiskCoverage(accepted / n, risk, generalized, scores[last_of_tie])


def _area(coverage: np.ndarray, risk: np.ndarray) -> float:
    """Area under the step curve: each point's risk over the coverage it adds."""
    return float(np.sum(risk * np.diff(coverage, prepend=0.0)))


@fill_doc
def aurc(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    confidence: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> float:
    """Area under the risk-coverage curve (lower is better).

    Without ties in the confidence this is the mean, over ``k = 1..n``, of
    the error rate among the ``k`` most confident rows. A model whose
    errors are all less confident than its correct predictions has the
    smallest AURC its error rate allows.

    Parameters
    ----------
    {y_true}
    {y_proba}
    {confidence}
    {labels}

    Returns
    -------
    float
        In [0, 1].

    See Also
    --------
    risk_coverage_curve, augrc

    References
    ----------
    Y. Geifman, G. Uziel, R. El-Yaniv. Bias-reduced uncertainty estimation
    for deep neural classifiers. ICLR 2019.

    Examples
    --------
    >>> from skspro.metrics import aurc
    >>> round(aurc([0, 1, 1, 0], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]), 4)  # (0+0+1/3+1/2)/4
    0.2083
    """
    curve = risk_coverage_curve(y_true, y_proba, confidence=confidence, labels=labels)
    return _area(curve.coverage, curve.risk)


@fill_doc
def augrc(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    confidence: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> float:
    """Area under the generalised risk-coverage curve (lower is better).

    The generalised risk at a coverage is the fraction of *all* rows that
    are accepted and wrong; its area is the probability that a random
    wrong prediction is accepted before a random row, weighted by the error
    rate (Traub et al., 2024). Unlike AURC it does not give the few most
    confident rows the weight of the whole curve.

    Parameters
    ----------
    {y_true}
    {y_proba}
    {confidence}
    {labels}

    Returns
    -------
    float
        In [0, error rate].

    See Also
    --------
    risk_coverage_curve, aurc

    References
    ----------
    J. Traub, T. J. Bungert, C. T. Lüth, M. Baumgartner, K. H. Maier-Hein,
    L. Maier-Hein, P. F. Jaeger. Overcoming common flaws in the evaluation
    of selective classification systems. NeurIPS 2024.

    Examples
    --------
    >>> from skspro.metrics import augrc
    >>> round(augrc([0, 1, 1, 0], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]), 4)  # (0+0+1/4+2/4)/4
    0.1875
    """
    curve = risk_coverage_curve(y_true, y_proba, confidence=confidence, labels=labels)
    return _area(curve.coverage, curve.generalized_risk)


@fill_doc
def coverage_at_risk(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    risk: float,
    *,
    confidence: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> float:
    """Largest coverage whose selective risk is at most ``risk``.

    Parameters
    ----------
    {y_true}
    {y_proba}
    risk : float
        The error rate tolerated among accepted rows, in [0, 1].
    {confidence}
    {labels}

    Returns
    -------
    float
        The fraction of rows a threshold on the confidence can accept with
        an error rate of at most ``risk`` on these data; 0 when even the
        most confident rows err more often.

    See Also
    --------
    risk_coverage_curve

    Examples
    --------
    >>> from skspro.metrics import coverage_at_risk
    >>> coverage_at_risk([0, 1, 1, 0], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], risk=0.4)
    0.75
    """
    if not 0.0 <= float(risk) <= 1.0:
        raise ValueError(f"risk must be in [0, 1]; got {risk!r}.")
    curve = risk_coverage_curve(y_true, y_proba, confidence=confidence, labels=labels)
    allowed = curve.risk <= float(risk) + 1e-12
    return float(curve.coverage[allowed].max()) if allowed.any() else 0.0
