"""How often the networks of an ensemble disagree on the predicted class.

Functional diversity in the ESPRO paper's sense: two networks inside one
simplex disagree on few test rows, two independently trained modes on many.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._docstrings import fill_doc
from ._validation import check_proba_networks

__all__ = ["disagreement", "pairwise_disagreement"]


@fill_doc
def pairwise_disagreement(proba_networks: ArrayLike) -> np.ndarray:
    """Fraction of rows on which each pair of networks predicts different classes.

    Parameters
    ----------
    {proba_networks}

    Returns
    -------
    ndarray of shape (n_networks, n_networks)
        Symmetric, zero on the diagonal.

    See Also
    --------
    disagreement

    Examples
    --------
    >>> from skspro.metrics import pairwise_disagreement
    >>> pairwise_disagreement([[[0.9, 0.1], [0.8, 0.2]], [[0.9, 0.1], [0.3, 0.7]]])
    array([[0. , 0.5],
           [0.5, 0. ]])
    """
    predicted = check_proba_networks(proba_networks).argmax(axis=2)  # (K, n)
    n_classes = int(predicted.max()) + 1
    one_hot = np.eye(n_classes)[predicted]  # (K, n, C)
    agree = np.einsum("inc,jnc->ij", one_hot, one_hot) / predicted.shape[1]
    return 1.0 - agree


@fill_doc
def disagreement(proba_networks: ArrayLike) -> float:
    """Mean disagreement over all pairs of different networks.

    Parameters
    ----------
    {proba_networks}

    Returns
    -------
    float
        In [0, 1]; 0 for a single network.

    See Also
    --------
    pairwise_disagreement, mutual_information

    Examples
    --------
    >>> from skspro.metrics import disagreement
    >>> disagreement([[[0.9, 0.1]], [[0.9, 0.1]], [[0.2, 0.8]]])  # 2 of 3 pairs disagree
    0.6666666666666666
    """
    pairs = pairwise_disagreement(proba_networks)
    k = len(pairs)
    return 0.0 if k < 2 else float(pairs[np.triu_indices(k, 1)].mean())
