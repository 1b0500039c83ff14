"""Deep-ensemble equivalent: how many deep-ensemble members a method's NLL is worth."""

from __future__ import annotations

from numbers import Real

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["deep_ensemble_equivalent"]


def deep_ensemble_equivalent(
    nll, deep_ensemble_sizes: ArrayLike, deep_ensemble_nlls: ArrayLike, *, return_censored: bool = False
):
    """Number of deep-ensemble members whose test NLL a method matches (Ashukha et al., 2020).

    The deep ensemble's curve ``NLL(k)`` is known at the given sizes and
    interpolated linearly between neighbouring sizes. The deep-ensemble
    equivalent (DEE) of a method with test NLL ``nll`` is the smallest
    (fractional) size ``k`` with ``NLL(k) <= nll``:
    ``DEE = min {k >= k_min : NLL(k) <= nll}``. Taking the first crossing
    makes it monotone in ``nll`` (a lower NLL never gets a smaller DEE) even
    where the measured curve is not monotone (seed noise).

    Beyond the ends of the curve:

    * **worse than the smallest ensemble** (``nll >= NLL(k_min)``, e.g. worse
      than one network): the DEE is clipped at the smallest size, as in
      Ashukha et al. (who define it on ``k >= 1``); no extrapolation below
      one member.
    * **better than the largest ensemble** (``nll < NLL(k)`` for every
      measured ``k``): the DEE is only known to exceed the largest size. The
      largest size is returned as a lower bound; with
      ``return_censored=True`` a flag says so. There is no extrapolation:
      deep-ensemble curves flatten with size, so any extrapolation would
      mostly report its own assumption.

    Parameters
    ----------
    nll : float or array-like of float
        Test NLL of the method (or several methods).
    deep_ensemble_sizes : array-like of shape (n_sizes,)
        Numbers of members, strictly increasing and positive (e.g. ``1..8``).
    deep_ensemble_nlls : array-like of shape (n_sizes,)
        Test NLL of the deep ensemble of each size, on the same test data
        (and with the same post-processing, e.g. temperature scaling, as
        ``nll``).
    return_censored : bool, default=False
        Also return whether each value is censored at the largest size (the
        method beat every measured deep ensemble).

    Returns
    -------
    dee : float or ndarray
        The deep-ensemble equivalent, in ``[sizes[0], sizes[-1]]``; a float
        for a scalar ``nll``.
    censored : bool or ndarray of bool
        Only with ``return_censored=True``: ``True`` where ``dee`` is the
        largest size because the method beat every deep ensemble (the true
        DEE is larger).

    See Also
    --------
    negative_log_likelihood

    References
    ----------
    A. Ashukha, A. Lyzhov, D. Molchanov, D. Vetrov. Pitfalls of In-Domain
    Uncertainty Estimation and Ensembling in Deep Learning. ICLR 2020.

    Examples
    --------
    >>> from skspro.metrics import deep_ensemble_equivalent
    >>> sizes, nlls = [1, 2, 3, 4], [0.50, 0.40, 0.36, 0.34]
    >>> float(deep_ensemble_equivalent(0.38, sizes, nlls))  # half way from 2 to 3 members
    2.5
    >>> float(deep_ensemble_equivalent(0.60, sizes, nlls))  # worse than one network: clipped
    1.0
    >>> deep_ensemble_equivalent(0.30, sizes, nlls, return_censored=True)  # better than 4 members
    (4.0, True)
    """
    sizes = np.asarray(deep_ensemble_sizes, dtype=np.float64)
    curve = np.asarray(deep_ensemble_nlls, dtype=np.float64)
    if sizes.ndim != 1 or curve.shape != sizes.shape or sizes.size == 0:
        raise ValueError(
            "deep_ensemble_sizes and deep_ensemble_nlls must be 1-D of the same non-zero length, got shapes "
            f"{sizes.shape} and {curve.shape}."
        )
    if not (np.all(np.isfinite(sizes)) and np.all(np.isfinite(curve))):
        raise ValueError("deep_ensemble_sizes and deep_ensemble_nlls must be finite.")
    if sizes[0] <= 0 or np.any(np.diff(sizes) <= 0):
        raise ValueError(
            f"deep_ensemble_sizes must be positive and strictly increasing, got {sizes.tolist()}."
        )
    scalar = isinstance(nll, Real) or np.ndim(nll) == 0
    values = np.atleast_1d(np.asarray(nll, dtype=np.float64))
    if not np.all(np.isfinite(values)):
        raise ValueError(f"nll must be finite, got {nll!r}.")
    dee = np.empty_like(values)
    censored = np.zeros(values.shape, dtype=bool)
    for i, value in enumerate(values.ravel()):
        reached = np.flatnonzero(curve <= value)
        if not reached.size:
            dee.flat[i], censored.flat[i] = sizes[-1], True
            continue
        j = reached[0]
        if j == 0:
            dee.flat[i] = sizes[0]
            continue
        # curve[j - 1] > value >= curve[j]: linear between the two sizes
        fraction = (curve[j - 1] - value) / (curve[j - 1] - curve[j])
        dee.flat[i] = sizes[j - 1] + fraction * (sizes[j] - sizes[j - 1])
    if scalar:
        dee, censored = float(dee[0]), bool(censored[0])
    return (dee, censored) if return_censored else dee
