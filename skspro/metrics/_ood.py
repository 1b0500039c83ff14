"""Out-of-distribution detection: scores from an ensemble's networks, and the standard metrics.

A detector flags a row as out-of-distribution (OOD) when its score is high.
Three scores come from the per-network probabilities ``P`` of shape
``(n_networks, n_samples, n_classes)``: one minus the maximum mean
probability (Hendrycks & Gimpel, 2017), the predictive entropy and the
mutual information (the networks' disagreement; zero for one network).
The metrics follow the OOD literature: AUROC, AUPR with either side as the
positive class, and the false-positive rate at 95 % true-positive rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .._docstrings import fill_doc
from ._uncertainty import _check_scores, mutual_information, ood_auroc, predictive_entropy
from ._validation import check_proba_networks

__all__ = ["OOD_SCORES", "fpr_at_tpr", "ood_aupr", "ood_detection_report", "ood_score"]

#: The scores :func:`ood_score` computes.
OOD_SCORES = ("max_probability", "entropy", "mutual_information")


@fill_doc
def ood_score(proba_networks: ArrayLike, score: str = "max_probability") -> np.ndarray:
    """An out-of-distribution score per row (larger: more likely OOD).

    Parameters
    ----------
    {proba_networks}
    score : {"max_probability", "entropy", "mutual_information"}, default="max_probability"
        ``"max_probability"``: one minus the largest mean probability;
        ``"entropy"``: :func:`~skspro.metrics.predictive_entropy`;
        ``"mutual_information"``: :func:`~skspro.metrics.mutual_information`.

    Returns
    -------
    ndarray of shape (n_samples,)

    Examples
    --------
    >>> from skspro.metrics import ood_score
    >>> ood_score([[[0.9, 0.1], [0.5, 0.5]]], "max_probability")
    array([0.1, 0.5])
    """
    if score not in OOD_SCORES:
        raise ValueError(f"score must be one of {OOD_SCORES}; got {score!r}.")
    proba = check_proba_networks(proba_networks)
    if score == "max_probability":
        return 1.0 - proba.mean(axis=0).max(axis=1)
    if score == "entropy":
        return predictive_entropy(proba)
    return mutual_information(proba)


def ood_aupr(scores_in: ArrayLike, scores_out: ArrayLike, *, positive: str = "out") -> float:
    """Area under the precision-recall curve of OOD detection (average precision).

    Parameters
    ----------
    scores_in, scores_out : array-like of shape (n_in,), (n_out,)
        Scores of in- and out-of-distribution rows (larger: more OOD).
    positive : {"out", "in"}, default="out"
        ``"out"`` (AUPR-Out): OOD rows are the positives, found by high
        scores. ``"in"`` (AUPR-In): in-distribution rows are the positives,
        found by low scores. Both are reported in the literature; they
        depend on the ratio of the two sets, unlike AUROC.

    Returns
    -------
    float
        :func:`sklearn.metrics.average_precision_score`, in [0, 1].

    Examples
    --------
    >>> from skspro.metrics import ood_aupr
    >>> ood_aupr([0.1, 0.2], [0.3, 0.9]), ood_aupr([0.1, 0.2], [0.3, 0.9], positive="in")
    (1.0, 1.0)
    """
    from sklearn.metrics import average_precision_score

    if positive not in ("out", "in"):
        raise ValueError(f"positive must be 'out' or 'in'; got {positive!r}.")
    inside, outside = _check_scores(scores_in, "scores_in"), _check_scores(scores_out, "scores_out")
    is_out = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    scores = np.r_[inside, outside]
    if positive == "out":
        return float(average_precision_score(is_out, scores))
    return float(average_precision_score(1 - is_out, -scores))


def fpr_at_tpr(scores_in: ArrayLike, scores_out: ArrayLike, tpr: float = 0.95) -> float:
    """Fraction of OOD rows accepted when ``tpr`` of the in-distribution rows are.

    The usual "FPR at 95 % TPR" (Liang et al., 2018): in-distribution rows
    are the positives; the threshold is the lowest that accepts (score at
    most the threshold) at least ``tpr`` of them, and the result is the
    fraction of out-of-distribution rows it also accepts. Lower is better.

    Parameters
    ----------
    scores_in, scores_out : array-like of shape (n_in,), (n_out,)
        Scores of in- and out-of-distribution rows (larger: more OOD).
    tpr : float, default=0.95
        True-positive rate on the in-distribution rows, in (0, 1].

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> from skspro.metrics import fpr_at_tpr
    >>> fpr_at_tpr([0.1, 0.2, 0.3, 0.4], [0.35, 0.5, 0.9, 1.0], tpr=0.75)
    0.0
    >>> fpr_at_tpr([0.1, 0.2, 0.3, 0.4], [0.35, 0.5, 0.9, 1.0], tpr=1.0)
    0.25
    """
    if not 0.0 < float(tpr) <= 1.0:
        raise ValueError(f"tpr must be in (0, 1]; got {tpr!r}.")
    inside, outside = _check_scores(scores_in, "scores_in"), _check_scores(scores_out, "scores_out")
    ordered = np.sort(inside)
    threshold = ordered[int(np.ceil(float(tpr) * len(ordered) - 1e-12)) - 1]
    return float(np.mean(outside <= threshold))


def ood_detection_report(
    proba_in: ArrayLike,
    proba_out: ArrayLike,
    *,
    scores: Sequence[str] = OOD_SCORES,
    tpr: float = 0.95,
) -> pd.DataFrame:
    """AUROC, AUPR-In/Out and FPR at ``tpr`` TPR for each OOD score.

    Parameters
    ----------
    proba_in, proba_out : array-like of shape (n_networks, n, n_classes)
        Per-network probabilities (``predict_proba_networks``) on in- and
        out-of-distribution rows; 2-D arrays are one network.
    scores : sequence of str, default=OOD_SCORES
        Which of :data:`OOD_SCORES` to report.
    tpr : float, default=0.95

    Returns
    -------
    pandas.DataFrame
        One row per score, columns ``auroc``, ``aupr_in``, ``aupr_out`` and
        ``fpr_at_<tpr>tpr`` (e.g. ``fpr_at_95tpr``).

    Examples
    --------
    >>> import numpy as np
    >>> from skspro.metrics import ood_detection_report
    >>> rng = np.random.default_rng(0)
    >>> sharp, flat = rng.dirichlet([0.1] * 3, (4, 50)), rng.dirichlet([5.0] * 3, (4, 50))
    >>> report = ood_detection_report(sharp, flat)
    >>> list(report.columns), report.index.tolist()
    (['auroc', 'aupr_in', 'aupr_out', 'fpr_at_95tpr'], ['max_probability', 'entropy', 'mutual_information'])
    """
    rows = {}
    column = f"fpr_at_{100 * float(tpr):g}tpr"
    for name in scores:
        inside, outside = ood_score(proba_in, name), ood_score(proba_out, name)
        rows[name] = {
            "auroc": ood_auroc(inside, outside),
            "aupr_in": ood_aupr(inside, outside, positive="in"),
            "aupr_out": ood_aupr(inside, outside, positive="out"),
            column: fpr_at_tpr(inside, outside, tpr),
        }
    return pd.DataFrame.from_dict(rows, orient="index")
