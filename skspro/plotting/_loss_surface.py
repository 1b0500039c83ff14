"""Loss over the plane through three weight vectors of a fitted model (the paper's figures).

The construction of Garipov et al. (2018), used by Benton et al. (2021): for
weight vectors ``w_1, w_2, w_3`` the plane has centre ``c`` (their mean) and
an orthonormal basis from Gram-Schmidt, ``u`` along ``w_2 - w_1`` and ``v``
along the part of ``w_3 - w_1`` orthogonal to ``u``. A grid of points
``c + r_u u + r_v v`` is a set of networks; each is the affine combination
``sum_i a_i w_i`` (``a`` sums to 1, entries may be negative), so the grid is
evaluated like sampled networks: :class:`~skspro.simplex.SimplexPoints` over
the three weight vectors, combined chunk by chunk and run through the
vectorised :func:`~skspro.simplex.forward_networks`. BatchNorm statistics
are re-estimated for every grid point (:func:`~skspro.simplex.recompute_norm_statistics`),
as they are for sampled networks.

No matplotlib here except in :func:`plot_loss_surface`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..simplex import SimplexPoints, StackedVertices, forward_networks, norm_buffer_names
from ..simplex.batchnorm import recompute_norm_statistics

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["LossSurface", "loss_surface_grid", "plot_loss_surface"]

#: Grid points evaluated (and, with BatchNorm, re-estimated) at once.
GRID_CHUNK = 32


@dataclass(frozen=True)
class LossSurface:
    """Loss (and accuracy) on a grid over the plane through three weight vectors.

    Attributes
    ----------
    u, v : ndarray of shape (n_grid,)
        Grid coordinates along the two basis vectors (distances in weight
        space, from the centre).
    loss : ndarray of shape (n_grid, n_grid)
        Mean cross-entropy at ``c + u[j] * u_vec + v[i] * v_vec`` in
        ``loss[i, j]`` (rows follow ``v``, as ``contourf(u, v, loss)``
        expects).
    accuracy : ndarray of shape (n_grid, n_grid) or None
        Accuracy at the same points, when asked for.
    points : ndarray of shape (3, 2)
        The three weight vectors' coordinates in the plane.
    barycentric : ndarray of shape (n_grid, n_grid, 3)
        The affine weights of the three vectors that give each grid point.
    center : Tensor of shape (n_params,)
        ``c``, flattened in the module's parameter order (float64).
    basis : Tensor of shape (2, n_params)
        ``u`` and ``v`` (orthonormal, float64).
    labels : tuple of str
        Names of the three weight vectors (for the figure).
    """

    u: np.ndarray
    v: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    points: np.ndarray
    barycentric: np.ndarray
    center: torch.Tensor
    basis: torch.Tensor
    labels: tuple[str, ...]


def _final(model):
    steps = getattr(model, "steps", None)
    if steps:
        return model[:-1], steps[-1][1]
    return None, model


def _network_params(networks, index: int) -> dict[str, torch.Tensor]:
    start = 0
    for group in networks.groups:
        if index < start + len(group):
            weights = group.weights[index - start : index - start + 1]
            return {name: p[0] for name, p in group.simplex.combine(weights).items()}
        start += len(group)
    raise ValueError(f"The model has {networks.n_networks} networks; got network index {index}.")


def weight_vector(model, spec: Any) -> tuple[dict[str, torch.Tensor], str]:
    """Parameters (name -> tensor) and a label for one point specification.

    ``spec`` is one of ``("member", m)``, ``("vertex", m, i)`` (vertex ``i``
    of member ``m``'s simplex), ``("network", s)`` (the ``s``-th network
    ``predict_proba`` averages), for a connector ``("mode", i)``,
    ``("connector", j)`` and ``("vertex", i)`` (into ``vertices_``), or a
    dict of parameter tensors (label ``"point"``).
    """
    _, estimator = _final(model)
    if isinstance(spec, Mapping):
        return {name: torch.as_tensor(t) for name, t in spec.items()}, "point"
    if not isinstance(spec, tuple) or not spec:
        raise ValueError(f"A point is a tuple such as ('vertex', 0, 1) or a dict of tensors; got {spec!r}.")
    kind, *index = spec
    connector = hasattr(estimator, "vertices_")
    if kind == "network" and len(index) == 1:
        return _network_params(estimator.networks_, int(index[0])), f"network {index[0]}"
    if connector and kind in ("mode", "connector", "vertex") and len(index) == 1:
        i = int(index[0]) + (len(estimator.estimators_) if kind == "connector" else 0)
        n = estimator.vertices_.n_vertices
        if not 0 <= i < n:
            raise ValueError(f"{spec!r} is not among the connector's {n} vertices.")
        return estimator.vertices_.vertex(i), f"{kind} {index[0]}"
    if not connector and kind in ("member", "vertex") and len(index) == (1 if kind == "member" else 2):
        member, vertex = int(index[0]), (int(index[1]) if kind == "vertex" else 0)
        simplexes = estimator.simplexes_
        if not 0 <= member < len(simplexes) or not 0 <= vertex < simplexes[member].n_vertices:
            raise ValueError(
                f"{spec!r} does not exist: the model has {len(simplexes)} members with "
                f"{simplexes[0].n_vertices} vertices each."
            )
        label = f"member {member}" if vertex == 0 else f"vertex {vertex}"
        return simplexes[member].vertex(vertex), label
    raise ValueError(
        f"Unknown point {spec!r} for {type(estimator).__name__}: use ('member', m), ('vertex', m, i) or "
        "('network', s) for an ensemble; ('mode', i), ('connector', j), ('vertex', i) or ('network', s) "
        "for a connector; or a dict of parameter tensors."
    )


def _default_points(estimator) -> list[tuple]:
    if hasattr(estimator, "vertices_"):
        n = estimator.vertices_.n_vertices
        return [("vertex", i) for i in range(3)] if n >= 3 else []
    simplex = estimator.simplexes_[0]
    return [("vertex", 0, i) for i in range(3)] if simplex.n_vertices >= 3 else []


def _plane(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Centre, orthonormal basis (Gram-Schmidt) and 2-D coordinates of three flat vectors (float64)."""
    center = flat.mean(dim=0)
    first = flat[1] - flat[0]
    second = flat[2] - flat[0]
    if first.norm() == 0:
        raise ValueError("The first two weight vectors are equal; the plane is not defined.")
    u = first / first.norm()
    second = second - (second @ u) * u
    if second.norm() <= 1e-9 * first.norm():
        raise ValueError("The three weight vectors lie on one line; the plane is not defined.")
    v = second / second.norm()
    basis = torch.stack([u, v])
    coords = ((flat - center) @ basis.T).numpy()
    return center, basis, coords


def _norm_batch_size(estimator, n_rows: int) -> int:
    nets = getattr(estimator, "estimators_", None) or [None]
    size = getattr(nets[0], "batch_size", None)
    return int(size) if size and size > 0 else n_rows


def _barycentric(points: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Affine weights ``a`` (summing to 1) with ``a @ points == grid`` for each grid row."""
    system = np.vstack([points.T, np.ones(3)])  # (3, 3)
    rhs = np.vstack([grid.T, np.ones(len(grid))])
    return np.linalg.solve(system, rhs).T


def _surface_model(model, points):
    """The fitted skspro estimator at the end of ``model``, a function that makes its inputs
    from raw rows (through a Pipeline's first steps), and the three points (checked)."""
    from .._inputs import validate_predict_data

    preprocess, estimator = _final(model)
    if not hasattr(estimator, "networks_"):
        raise ValueError(
            "loss_surface_grid needs a fitted skspro estimator (with networks_); "
            f"got {type(estimator).__name__}."
        )
    if points is None:
        points = _default_points(estimator)
        if not points:
            raise ValueError(
                "The model's first simplex has fewer than 3 vertices; pass points= (e.g. three members: "
                "[('member', 0), ('member', 1), ('member', 2)])."
            )
    points = list(points)
    if len(points) != 3:
        raise ValueError(f"points must name exactly three weight vectors; got {len(points)}.")

    def inputs(rows):
        rows = preprocess.transform(rows) if preprocess is not None else rows
        return validate_predict_data(estimator, rows)

    return estimator, inputs, points


def _label_index(estimator, y, n_rows: int) -> np.ndarray:
    """The column of ``estimator.classes_`` of every label of ``y`` (checked)."""
    classes = np.asarray(estimator.classes_)
    y = np.asarray(y)
    y_index = np.searchsorted(classes, y)
    if ((y_index >= len(classes)) | (classes[np.minimum(y_index, len(classes) - 1)] != y)).any():
        raise ValueError(f"y contains labels that are not in the model's classes_ {classes[:10].tolist()}.")
    if len(y) != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has {len(y)} labels.")
    return y_index


def _grid_metrics(networks, module, simplex, w_all, x, target, norm_names, norm_batches, batch_size):
    """Mean loss and accuracy on ``(x, target)`` of the network at every row of barycentric
    weights ``w_all``, ``GRID_CHUNK`` networks at a time (the BatchNorm buffers ``norm_names``
    re-estimated per network on ``norm_batches`` when given)."""
    buffers = {name: b.to(x.device) for name, b in networks.groups[0].buffers.items()}
    losses, correct = [], []
    with torch.no_grad():
        for start in range(0, len(w_all), GRID_CHUNK):
            w = w_all[start : start + GRID_CHUNK]
            params: dict[str, torch.Tensor] | SimplexPoints = SimplexPoints(simplex, w)
            chunk_buffers = buffers
            if norm_batches is not None:
                params = simplex.combine(w)
                norm = recompute_norm_statistics(module, params, buffers, norm_batches)
                chunk_buffers = {**buffers, **norm}
            loss_sum = torch.zeros(len(w), dtype=torch.float64, device=x.device)
            hits = torch.zeros(len(w), dtype=torch.float64, device=x.device)
            for rows in range(0, x.shape[0], batch_size):
                xb, yb = x[rows : rows + batch_size], target[rows : rows + batch_size]
                proba = forward_networks(
                    module,
                    params,
                    chunk_buffers,
                    xb,
                    batched_buffers=norm_names,
                    transform=networks._to_proba,
                    network_chunk=GRID_CHUNK,
                    row_chunk=batch_size,
                )
                picked = proba.gather(2, yb.view(1, -1, 1).expand(len(w), -1, 1)).squeeze(2)
                loss_sum += -torch.log(picked.clamp_min(torch.finfo(torch.float64).tiny)).sum(dim=1)
                hits += (proba.argmax(dim=2) == yb).sum(dim=1).double()
            losses.append(loss_sum / x.shape[0])
            correct.append(hits / x.shape[0])
    return torch.cat(losses), torch.cat(correct)


def loss_surface_grid(
    model,
    X: ArrayLike,
    y: ArrayLike,
    *,
    points: Sequence[Any] | None = None,
    n_grid: int = 21,
    margin: float = 0.25,
    batch_size: int = 2048,
    accuracy: bool = False,
    norm_X: ArrayLike | None = None,
) -> LossSurface:
    """Training loss (and accuracy) on a grid over the plane through three weight vectors.

    Parameters
    ----------
    model : fitted ESPROClassifier, DeepEnsembleClassifier or SPROConnector
        Or a Pipeline ending in one (``X`` is transformed by its first steps).
    X : array-like of shape (n_samples, ...)
        Rows the loss is evaluated on (e.g. the training data).
    y : array-like of shape (n_samples,)
        Their labels, from ``model.classes_``.
    points : sequence of three point specifications, default=None
        Each ``("member", m)``, ``("vertex", m, i)``, ``("network", s)``
        (for a connector ``("mode", i)``, ``("connector", j)``,
        ``("vertex", i)``) or a dict of parameter tensors. ``None``: the
        first three vertices of the first member's simplex (the complex's
        first three vertices for a connector).
    n_grid : int, default=21
        Grid points per axis (``n_grid ** 2`` networks are evaluated).
    margin : float, default=0.25
        The grid extends this fraction of the points' extent beyond them on
        every side.
    batch_size : int, default=2048
        Rows per forward call (bounds memory).
    accuracy : bool, default=False
        Also return the accuracy of every grid point.
    norm_X : array-like, default=None
        Rows on which BatchNorm statistics are re-estimated for every grid
        point (the training data), in minibatches of the members' skorch
        ``batch_size`` as for the sampled networks at the end of fit;
        ``None`` uses ``X``. Ignored for modules without BatchNorm.

    Returns
    -------
    LossSurface

    See Also
    --------
    plot_loss_surface

    References
    ----------
    T. Garipov, P. Izmailov, D. Podoprikhin, D. Vetrov, A. G. Wilson. Loss
    surfaces, mode connectivity, and fast ensembling of DNNs. NeurIPS 2018.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skspro import ESPROClassifier, default_estimator
    >>> from skspro.plotting import loss_surface_grid
    >>> X, y = load_iris(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> model = ESPROClassifier(default_estimator().set_params(max_epochs=5), n_members=1, n_vertices=2,
    ...                         vertex_epochs=2, n_samples=2, random_state=0).fit(X, y)
    >>> surface = loss_surface_grid(model, X, y, n_grid=5)
    >>> surface.loss.shape, surface.points.shape
    ((5, 5), (3, 2))
    """
    if isinstance(n_grid, bool) or not isinstance(n_grid, int | np.integer) or n_grid < 2:
        raise ValueError(f"n_grid must be an integer >= 2; got {n_grid!r}.")
    estimator, inputs, points = _surface_model(model, points)
    x = inputs(X)
    y_index = _label_index(estimator, y, x.shape[0])

    vectors, labels = zip(*(weight_vector(model, p) for p in points))
    networks = estimator.networks_
    device = networks.device
    names = list(networks.groups[0].simplex.params)
    simplex = StackedVertices(
        {name: torch.stack([vec[name].detach().to(device) for vec in vectors]) for name in names}
    )
    center, basis, coords = _plane(simplex.flat().double().cpu())
    low, high = coords.min(axis=0), coords.max(axis=0)
    pad = margin * (high - low).max()
    u = np.linspace(low[0] - pad, high[0] + pad, n_grid)
    v = np.linspace(low[1] - pad, high[1] + pad, n_grid)
    grid = np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2)  # row i of v, column j of u
    weights = _barycentric(coords, grid)

    module = copy.deepcopy(networks.module)
    x = x.to(device)
    norm_names = frozenset(norm_buffer_names(module))
    norm_batches = None
    if norm_names:
        source = x if norm_X is None else inputs(norm_X).to(device)
        # in the minibatches the sampled networks' statistics are estimated on (the net's batch size)
        size = _norm_batch_size(estimator, source.shape[0])
        norm_batches = [source[i : i + size] for i in range(0, source.shape[0], size)]
    w_all = torch.as_tensor(weights, dtype=next(iter(simplex.params.values())).dtype, device=device)
    target = torch.as_tensor(y_index, device=device)
    losses, correct = _grid_metrics(
        networks, module, simplex, w_all, x, target, norm_names, norm_batches, batch_size
    )
    shape = (n_grid, n_grid)
    return LossSurface(
        u=u,
        v=v,
        loss=losses.cpu().numpy().reshape(shape),
        accuracy=correct.cpu().numpy().reshape(shape) if accuracy else None,
        points=coords,
        barycentric=weights.reshape(n_grid, n_grid, 3),
        center=center,
        basis=basis,
        labels=tuple(labels),
    )


def _draw_values(ax, surface: LossSurface, values: np.ndarray, metric: str, levels: int, cmap: str) -> None:
    """Filled contours of ``values`` over the plane, with a colour bar (loss on a log scale)."""
    import matplotlib.colors as mcolors

    if metric == "loss":
        low, high = max(float(values.min()), 1e-12), max(float(values.max()), 1e-12)
        high = high if high > low else low * 1.01
        norm = mcolors.LogNorm(vmin=low, vmax=high)
        contour = ax.contourf(
            surface.u, surface.v, values, levels=np.geomspace(low, high, levels), norm=norm, cmap=cmap
        )
        label = "training loss (log scale)"
    else:
        contour = ax.contourf(
            surface.u,
            surface.v,
            values,
            levels=levels,
            cmap=cmap + "_r" if not cmap.endswith("_r") else cmap[:-2],
        )
        label = "accuracy"
    colorbar = ax.figure.colorbar(contour, ax=ax, label=label)
    if metric == "loss":
        import matplotlib.ticker as mticker

        ticks = np.geomspace(low, high, 5)
        colorbar.set_ticks(ticks)
        colorbar.ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%.3g"))
        colorbar.ax.yaxis.set_minor_formatter(mticker.NullFormatter())


def plot_loss_surface(
    model,
    X: ArrayLike | None = None,
    y: ArrayLike | None = None,
    *,
    metric: str = "loss",
    levels: int = 20,
    cmap: str = "viridis_r",
    edges: bool = True,
    ax: Axes | None = None,
    **grid_kwargs: Any,
) -> Axes:
    """The loss over the plane through three weight vectors, with the simplex drawn on it.

    The paper's loss-surface figure (Benton et al., 2021, Fig. 1 and 4):
    filled contours of the training loss on a log-scaled colour map, the
    triangle through the three weight vectors (the simplex's edges, when
    they are vertices of one simplex) and its vertices.

    Parameters
    ----------
    model : fitted skspro estimator, Pipeline ending in one, or LossSurface
        A :class:`LossSurface` from :func:`loss_surface_grid` is drawn as it
        is; otherwise the grid is computed here from ``X``, ``y`` and
        ``grid_kwargs``.
    X, y : array-like, default=None
        Rows and labels the loss is evaluated on (needed unless ``model``
        is a LossSurface).
    metric : {"loss", "accuracy"}, default="loss"
        ``"loss"``: cross-entropy, log-scaled colours. ``"accuracy"``:
        linear colours (needs a surface computed with ``accuracy=True``,
        which this function asks for).
    levels : int, default=20
        Contour levels.
    cmap : str, default="viridis_r"
        Colour map (low loss bright).
    edges : bool, default=True
        Draw the triangle's edges.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; ``None`` makes a new figure.
    **grid_kwargs
        Passed to :func:`loss_surface_grid` (``points``, ``n_grid``,
        ``margin``, ``norm_X``, ...).

    Returns
    -------
    matplotlib.axes.Axes
        With the filled contour set (``ax.collections[0]``), the edges as
        one line, the vertices as one line of markers, labels and a colour
        bar.

    See Also
    --------
    loss_surface_grid

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skspro import ESPROClassifier, default_estimator
    >>> from skspro.plotting import plot_loss_surface
    >>> X, y = load_iris(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> model = ESPROClassifier(default_estimator().set_params(max_epochs=5), n_members=1, n_vertices=2,
    ...                         vertex_epochs=2, n_samples=2, random_state=0).fit(X, y)
    >>> ax = plot_loss_surface(model, X, y, n_grid=5)
    >>> ax.get_xlabel()
    'u (distance in weight space)'
    """
    from ._calibration import _axes

    if metric not in ("loss", "accuracy"):
        raise ValueError(f"metric must be 'loss' or 'accuracy'; got {metric!r}.")
    if isinstance(model, LossSurface):
        surface = model
    else:
        if X is None or y is None:
            raise ValueError("plot_loss_surface needs X and y to compute the grid (or a LossSurface).")
        surface = loss_surface_grid(model, X, y, accuracy=metric == "accuracy", **grid_kwargs)
    values = surface.loss if metric == "loss" else surface.accuracy
    if values is None:
        raise ValueError(
            "This LossSurface has no accuracy; compute it with loss_surface_grid(accuracy=True)."
        )
    ax = _axes(ax)
    _draw_values(ax, surface, values, metric, levels, cmap)
    triangle = np.vstack([surface.points, surface.points[:1]])
    if edges:
        ax.plot(triangle[:, 0], triangle[:, 1], color="white", linewidth=1.5, label="simplex edges")
    ax.plot(
        surface.points[:, 0],
        surface.points[:, 1],
        linestyle="none",
        marker="o",
        color="white",
        markeredgecolor="black",
        markersize=7,
        label="vertices",
    )
    for (px, py), text in zip(surface.points, surface.labels):
        ax.annotate(
            text, (px, py), textcoords="offset points", xytext=(6, 6), color="white", fontsize="small"
        )
    ax.set(
        xlabel="u (distance in weight space)",
        ylabel="v (distance in weight space)",
        title="Training loss over the plane" if metric == "loss" else "Accuracy over the plane",
    )
    ax.set_aspect("equal")
    return ax
