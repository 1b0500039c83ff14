"""Uniform sampling on the probability simplex."""

from __future__ import annotations

import torch

__all__ = ["make_generator", "sample_simplex_weights"]


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``.

    The randomness skspro draws itself (sample points, start points of
    vertices, the networks sampled per training step) flows through
    generators made here from integer seeds derived from the estimator's
    ``random_state``. What the user's module and skorch draw from torch's
    global generators (initialisation, dropout, shuffling) runs inside
    ``skspro._members.seeded_torch``, which forks those generators, seeds the
    fork from the same integer seeds and restores the caller's state after.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def sample_simplex_weights(
    n_vertices: int,
    n_samples: int,
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw points uniformly from the simplex with ``n_vertices`` vertices.

    A uniform point is Dirichlet(1, ..., 1): independent Exp(1) draws,
    normalised to sum to one.

    Parameters
    ----------
    n_vertices : int
        Number of vertices (``k + 1`` for a ``k``-simplex), at least 1.
    n_samples : int
        Number of points.
    generator : torch.Generator, optional
        Source of randomness; its device decides where the result lives.
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    Tensor of shape (n_samples, n_vertices)
        Non-negative barycentric weights; each row sums to one.

    Examples
    --------
    >>> from skspro.simplex import make_generator, sample_simplex_weights
    >>> w = sample_simplex_weights(3, 4, make_generator(0))
    >>> tuple(w.shape), bool(((w.sum(1) - 1).abs() < 1e-6).all())
    ((4, 3), True)
    """
    if n_vertices < 1:
        raise ValueError(f"n_vertices must be >= 1, got {n_vertices}.")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}.")
    device = generator.device if generator is not None else "cpu"
    draws = torch.empty((n_samples, n_vertices), dtype=torch.float64, device=device)
    draws.exponential_(1.0, generator=generator)
    return (draws / draws.sum(dim=1, keepdim=True)).to(dtype)
