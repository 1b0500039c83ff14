"""Volume of a simplex whose vertices are flattened parameter vectors.

For vertices ``theta_0 .. theta_k`` with edge vectors ``e_i = theta_i - theta_0``
the ``k``-dimensional volume is ``sqrt(det G) / k!`` with the Gram matrix
``G = E E^T``.  ``det G`` is evaluated as ``prod(R_ii)^2`` from a QR
factorisation ``E^T = Q R`` in float64, which is the same determinant without
forming ``G`` (squaring the condition number) and without under/overflow for
millions of parameters: only logarithms are ever summed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "flatten_vertices",
    "log_volume",
    "cayley_menger_log_volume",
    "IncrementalLogVolume",
]


def flatten_vertices(vertices: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Return the vertices as a float64 matrix of shape ``(k + 1, n_params)``.

    Parameters
    ----------
    vertices : Tensor of shape (k + 1, ...) or sequence of k + 1 tensors
        One row (or tensor) per vertex; each is flattened.

    Returns
    -------
    Tensor of shape (k + 1, n_params), float64.
    """
    if isinstance(vertices, torch.Tensor):
        if vertices.dim() == 0:
            raise ValueError("vertices must have a leading vertex dimension, got a scalar.")
        rows = vertices.reshape(vertices.shape[0], -1)
    else:
        vertices = list(vertices)
        if not vertices:
            raise ValueError("A simplex needs at least one vertex, got none.")
        rows = torch.stack([torch.as_tensor(v).reshape(-1) for v in vertices])
    return rows.to(torch.float64)


def _log_factorial(k: int) -> float:
    return math.lgamma(k + 1)


def log_volume(vertices: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Natural logarithm of the ``k``-volume of a simplex with ``k + 1`` vertices.

    Computed in float64 as ``0.5 * log det(E E^T) - log k!`` through a QR
    factorisation of the edge matrix, so it is stable for millions of
    parameters and differentiable in the vertices.

    Parameters
    ----------
    vertices : Tensor of shape (k + 1, ...) or sequence of k + 1 tensors
        The vertices; every vertex is flattened to a vector.

    Returns
    -------
    Tensor
        A float64 scalar. ``-inf`` for a degenerate simplex (a repeated vertex
        or affinely dependent vertices), ``0`` for a single vertex (a point has
        0-volume 1 by convention).

    Examples
    --------
    >>> import torch
    >>> from skspro.simplex import log_volume
    >>> triangle = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> round(float(log_volume(triangle).exp()), 6)
    0.5
    """
    rows = flatten_vertices(vertices)
    k = rows.shape[0] - 1
    if k == 0:
        return torch.zeros((), dtype=torch.float64, device=rows.device)
    if k > rows.shape[1]:
        # k + 1 points in fewer than k dimensions are always affinely dependent.
        return torch.full((), -math.inf, dtype=torch.float64, device=rows.device)
    edges = rows[1:] - rows[:1]
    # Scale out the typical edge length so that R's diagonal is O(1); the
    # scale enters the result as k * log(scale).
    scale = edges.norm(dim=1).max()
    if scale == 0:
        return torch.full((), -math.inf, dtype=torch.float64, device=rows.device)
    r = torch.linalg.qr((edges / scale).T, mode="reduced").R
    diag = r.diagonal().abs()
    # Numerical rank test (as numpy.linalg.matrix_rank): a height below this
    # is rounding noise, the vertices are affinely dependent.
    if diag.min() <= diag.max() * max(rows.shape) * torch.finfo(torch.float64).eps:
        return torch.full((), -math.inf, dtype=torch.float64, device=rows.device)
    return torch.log(diag).sum() + k * torch.log(scale) - _log_factorial(k)


def cayley_menger_log_volume(vertices: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Log-volume from the Cayley-Menger determinant of pairwise distances.

    A reference for :func:`log_volume` on small simplexes: it needs only the
    squared distances ``d_ij^2`` between vertices,
    ``Vol^2 = (-1)^(k+1) / (2^k (k!)^2) * det(CM)`` with the bordered distance
    matrix ``CM``. It is numerically weaker than :func:`log_volume` (the
    determinant cancels heavily for thin simplexes); use it to check, not to
    train.

    Parameters
    ----------
    vertices : Tensor of shape (k + 1, ...) or sequence of k + 1 tensors

    Returns
    -------
    Tensor
        Float64 scalar log-volume, ``-inf`` where the determinant is not of
        the sign of a real simplex.
    """
    rows = flatten_vertices(vertices)
    k = rows.shape[0] - 1
    if k == 0:
        return torch.zeros((), dtype=torch.float64)
    sq_dist = torch.cdist(rows, rows).pow(2)
    cm = torch.ones((k + 2, k + 2), dtype=torch.float64)
    cm[0, 0] = 0.0
    cm[1:, 1:] = sq_dist
    sign, logabsdet = torch.linalg.slogdet(cm)
    expected_sign = (-1) ** (k + 1)
    if sign != expected_sign:
        return torch.full((), -math.inf, dtype=torch.float64)
    log_vol_sq = logabsdet - k * math.log(2.0) - 2 * _log_factorial(k)
    return 0.5 * log_vol_sq


class IncrementalLogVolume:
    """Log-volume of a simplex whose first ``k`` vertices are frozen.

    Training adds one vertex at a time while the older ones stay fixed. The
    volume then factorises as ``Vol_k = Vol_{k-1} * h / k`` with ``h`` the
    height of the new vertex above the affine hull of the frozen ones. This
    object caches, once, an orthonormal basis of the frozen edges (float64)
    and the frozen log-volume, so each training step costs one projection of
    the new vertex (``O(k * n_params)``) instead of all pairwise distances.

    The gradient of the result with respect to the new vertex is
    ``h_vec / ||h_vec||^2``: it pushes the new vertex straight away from the
    frozen face.

    Parameters
    ----------
    frozen : Tensor of shape (k, n_params)
        The frozen vertices, already flattened (any float dtype, any device).
    """

    def __init__(self, frozen: torch.Tensor) -> None:
        frozen = frozen.detach().to(torch.float64)
        if frozen.dim() != 2 or frozen.shape[0] < 1:
            raise ValueError(
                "frozen must be a (k, n_params) matrix with k >= 1 vertices, "
                f"got shape {tuple(frozen.shape)}."
            )
        self.k_frozen = frozen.shape[0]
        self.origin = frozen[0]
        edges = frozen[1:] - frozen[:1]
        if edges.shape[0] == 0:
            self.basis = None
            self.frozen_log_volume = 0.0
        else:
            q, r = torch.linalg.qr(edges.T, mode="reduced")
            self.basis = q  # (n_params, k - 1), orthonormal columns
            frozen_log_det = torch.log(r.diagonal().abs()).sum()
            # log of (k-1)-volume of the frozen face
            self.frozen_log_volume = float(frozen_log_det) - _log_factorial(edges.shape[0])

    def height(self, new_vertex: torch.Tensor) -> torch.Tensor:
        """Height vector of ``new_vertex`` (flat) above the frozen face, float64."""
        edge = new_vertex.to(torch.float64) - self.origin
        if self.basis is not None:
            edge = edge - self.basis @ (self.basis.T @ edge)
        return edge

    def __call__(self, new_vertex: torch.Tensor) -> torch.Tensor:
        """Log-volume of the simplex made of the frozen vertices and ``new_vertex``.

        Parameters
        ----------
        new_vertex : Tensor of shape (n_params,)
            The flattened new vertex; gradients flow into it.

        Returns
        -------
        Tensor
            Float64 scalar.
        """
        h = self.height(new_vertex)
        return self._from_squared_height(h.dot(h) + self._floor_sq)

    @property
    def _floor_sq(self) -> float:
        # A collapsed simplex (the new vertex on the frozen face, h = 0) would
        # give log 0 and a NaN gradient; a floor far below any trainable
        # height keeps both finite (the gradient is then 0).
        if not hasattr(self, "_floor_sq_value"):
            self._floor_sq_value = (1e-12 * max(float(self.origin.norm()), 1.0)) ** 2
        return self._floor_sq_value

    def _from_squared_height(self, h_sq: torch.Tensor) -> torch.Tensor:
        # Vol_k = Vol_{k-1} * h / k, with k = k_frozen (the new simplex has
        # k + 1 vertices).
        return self.frozen_log_volume + 0.5 * torch.log(h_sq) - math.log(self.k_frozen)

    def value_and_gradient(self, new_vertex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-volume and its gradient in ``new_vertex``, without autograd.

        The gradient is ``h_vec / ||h_vec||^2`` (with the same floor as
        :meth:`__call__`), so a training step needs one projection and no
        backward pass through it.

        Parameters
        ----------
        new_vertex : Tensor of shape (n_params,)

        Returns
        -------
        log_volume : Tensor
            Float64 scalar, equal to ``self(new_vertex)``.
        gradient : Tensor of shape (n_params,)
            In the dtype and on the device of ``new_vertex``.
        """
        with torch.no_grad():
            h = self.height(new_vertex)
            h_sq = h.dot(h) + self._floor_sq
            return self._from_squared_height(h_sq), (h / h_sq).to(new_vertex.dtype)
