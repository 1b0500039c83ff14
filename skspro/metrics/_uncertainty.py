"""Epistemic uncertainty from the networks of an ensemble, and OOD detection.

With ``P`` the per-network probabilities ``(n_networks, n_samples,
n_classes)`` (``predict_proba_networks``), the predictive entropy
``H[mean_k P_k]`` (total uncertainty) splits into the expected entropy
``mean_k H[P_k]`` (aleatoric: what each network finds ambiguous) and the
mutual information between the label and the network (epistemic: how much the
networks disagree). All entropies are in nats.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import entr

from .._docstrings import fill_doc
from ._validation import check_proba_networks

__all__ = ["expected_entropy", "mutual_information", "ood_auroc", "predictive_entropy"]


def _entropy(proba: np.ndarray) -> np.ndarray:
    """Entropy over the last axis, with 0 log 0 = 0."""
    return entr(proba).sum(axis=-1)


@fill_doc
def predictive_entropy(proba_networks: ArrayLike) -> np.ndarray:
    """Entropy of the ensemble's mean prediction (total uncertainty).

    ``H[mean_k p_k(y | x)]`` in nats, between 0 and ``log(n_classes)``.

    Parameters
    ----------
    {proba_networks}

    Returns
    -------
    ndarray of shape (n_samples,)

    See Also
    --------
    expected_entropy, mutual_information

    Examples
    --------
    >>> import numpy as np
    >>> from skspro.metrics import predictive_entropy
    >>> proba_networks = np.array([[[1.0, 0.0], [0.5, 0.5]]])  # one network, two samples
    >>> predictive_entropy(proba_networks).round(4)  # 0 and log 2
    array([0.    , 0.6931])
    """
    proba = check_proba_networks(proba_networks)
    return _entropy(proba.mean(axis=0))


@fill_doc
def expected_entropy(proba_networks: ArrayLike) -> np.ndarray:
    """Mean entropy of the individual networks (aleatoric uncertainty).

    ``mean_k H[p_k(y | x)]`` in nats.

    Parameters
    ----------
    {proba_networks}

    Returns
    -------
    ndarray of shape (n_samples,)

    See Also
    --------
    predictive_entropy, mutual_information

    Examples
    --------
    Two confident networks that disagree: each is certain, so the expected
    entropy is 0 although the ensemble's prediction is 50/50.

    >>> import numpy as np
    >>> from skspro.metrics import expected_entropy
    >>> proba_networks = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    >>> expected_entropy(proba_networks)
    array([0.])
    """
    proba = check_proba_networks(proba_networks)
    return _entropy(proba).mean(axis=0)


@fill_doc
def mutual_information(proba_networks: ArrayLike) -> np.ndarray:
    """Mutual information between the label and the network (epistemic uncertainty).

    ``predictive_entropy - expected_entropy`` (the BALD score), in nats: 0
    when all networks agree, larger when confident networks contradict each
    other. Tiny negative values from floating-point rounding are clipped
    to 0.

    Parameters
    ----------
    {proba_networks}

    Returns
    -------
    ndarray of shape (n_samples,)
        Non-negative, at most ``log(min(n_networks, n_classes))``.

    See Also
    --------
    predictive_entropy, expected_entropy, ood_auroc

    References
    ----------
    N. Houlsby, F. Huszar, Z. Ghahramani, M. Lengyel. Bayesian active
    learning for classification and preference learning. arXiv:1112.5745,
    2011.

    Examples
    --------
    >>> import numpy as np
    >>> from skspro.metrics import mutual_information
    >>> agree = [[[0.7, 0.3]], [[0.7, 0.3]]]
    >>> disagree = [[[1.0, 0.0]], [[0.0, 1.0]]]
    >>> mutual_information(agree), mutual_information(disagree).round(4)
    (array([0.]), array([0.6931]))
    """
    proba = check_proba_networks(proba_networks)
    information = _entropy(proba.mean(axis=0)) - _entropy(proba).mean(axis=0)
    return np.maximum(information, 0.0)


def _check_scores(scores: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(scores)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must hold numbers; got an array of dtype {array.dtype}.")
    array = array.astype(np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per sample); got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty; AUROC needs at least one in- and one out-of-distribution sample.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values; drop or fix those samples.")
    return array


def ood_auroc(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """AUROC of separating out-of-distribution from in-distribution samples by a score.

    The score must be larger for samples that look more out-of-distribution
    (predictive entropy, mutual information, ``1 - max probability``). 1 is
    perfect separation, 0.5 is chance. Computed with
    :func:`sklearn.metrics.roc_auc_score`, with the out-of-distribution
    samples as the positive class.

    Parameters
    ----------
    scores_in : array-like of shape (n_in,)
        Scores of in-distribution samples (e.g. the clean test set).
    scores_out : array-like of shape (n_out,)
        Scores of out-of-distribution samples (e.g. corrupted inputs).

    Returns
    -------
    float
        In [0, 1].

    See Also
    --------
    predictive_entropy, mutual_information

    Examples
    --------
    >>> from skspro.metrics import ood_auroc
    >>> round(ood_auroc([0.1, 0.2, 0.3], [0.25, 0.9, 1.0]), 4)  # 8 of 9 pairs ordered correctly
    0.8889
    """
    from sklearn.metrics import roc_auc_score

    inside = _check_scores(scores_in, "scores_in")
    outside = _check_scores(scores_out, "scores_out")
    is_out = np.concatenate([np.zeros(len(inside)), np.ones(len(outside))])
    return float(roc_auc_score(is_out, np.concatenate([inside, outside])))
