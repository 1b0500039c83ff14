"""Networks on a simplex of weights, for any unmodified ``torch.nn.Module``.

The vertices of a simplex are stored *stacked*: for every parameter name of
the module one tensor of shape ``(k + 1, *param.shape)``. A point of the
simplex with barycentric weights ``a`` is the network whose parameters are
``sum_i a_i * theta_i``; it is evaluated with
:func:`torch.func.functional_call`, so the user's module is never rewritten
or modified. ``S`` sampled networks are evaluated either in one vectorised
call (:func:`torch.func.vmap` over the stacked sampled parameters) or one at a
time; :func:`forward_networks` picks by the number of rows and bounds memory by
chunking networks and rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch.func import functional_call, vmap

from .stacked import Unsupported, _run, eval_plan, stacked_forward
from .volume import log_volume

__all__ = [
    "StackedVertices",
    "module_params",
    "module_buffers",
    "forward_networks",
    "forward_networks_loop",
    "VMAP_MAX_ROWS",
    "vmap_row_limit",
]

#: Up to this many rows per call, :func:`forward_networks` evaluates sampled
#: networks with ``vmap``; above it, one network after the other. One small
#: batch leaves the hardware idle and vmap fills it; at large batches a single
#: network already does, and vmap turns convolutions into slower grouped ones.
VMAP_MAX_ROWS = 256
#: The limit for convolutional modules on the CPU, where grouped convolutions
#: lose to the loop already at 32 rows (benchmarks/results/speed-cpu.md).
VMAP_MAX_ROWS_CPU_CONV = 8


def vmap_row_limit(module: torch.nn.Module, device: torch.device) -> int:
    """Largest row chunk that ``method="auto"`` evaluates with vmap."""
    if device.type == "cpu" and any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in module.modules()):
        return VMAP_MAX_ROWS_CPU_CONV
    return VMAP_MAX_ROWS


def module_params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of a module's parameters, by name."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def module_buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of a module's buffers, by name."""
    return {name: b.detach().clone() for name, b in module.named_buffers()}


@dataclass
class StackedVertices:
    """The vertices of one simplex in weight space, stacked per parameter.

    Parameters
    ----------
    params : dict of str to Tensor
        For every parameter name of the module, a tensor of shape
        ``(n_vertices, *param_shape)``; row ``i`` is vertex ``i``.

    Examples
    --------
    >>> import torch
    >>> from skspro.simplex import StackedVertices
    >>> net = torch.nn.Linear(3, 2)
    >>> simplex = StackedVertices.from_module(net)
    >>> simplex.n_vertices
    1
    """

    params: dict[str, torch.Tensor]

    @classmethod
    def from_module(cls, module: torch.nn.Module) -> StackedVertices:
        """A one-vertex simplex at the module's current parameters."""
        return cls({name: p.unsqueeze(0) for name, p in module_params(module).items()})

    @property
    def n_vertices(self) -> int:
        """Number of vertices ``k + 1``."""
        return next(iter(self.params.values())).shape[0]

    @property
    def n_params(self) -> int:
        """Number of scalar parameters of one network."""
        return sum(p[0].numel() for p in self.params.values())

    def vertex(self, index: int) -> dict[str, torch.Tensor]:
        """Parameters of vertex ``index`` as a name -> tensor dict (views)."""
        return {name: p[index] for name, p in self.params.items()}

    def append(self, vertex: Mapping[str, torch.Tensor]) -> StackedVertices:
        """A new simplex with ``vertex`` added as the last vertex."""
        missing = set(self.params) ^ set(vertex)
        if missing:
            raise ValueError(f"The new vertex does not match the simplex's parameters: {sorted(missing)}.")
        return StackedVertices(
            {
                name: torch.cat([p, vertex[name].detach().to(p).unsqueeze(0)])
                for name, p in self.params.items()
            }
        )

    def centroid(self) -> dict[str, torch.Tensor]:
        """The centroid of the vertices (where a new vertex starts)."""
        return {name: p.mean(dim=0) for name, p in self.params.items()}

    def flatten_vertex(self, vertex: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A name -> tensor dict flattened in this simplex's parameter order."""
        return torch.cat([vertex[name].reshape(-1) for name in self.params])

    def flat(self) -> torch.Tensor:
        """All vertices flattened to one ``(n_vertices, n_params)`` matrix."""
        return torch.cat([p.reshape(p.shape[0], -1) for p in self.params.values()], dim=1)

    def log_volume(self) -> float:
        """Log of the ``k``-volume of the simplex (see :func:`log_volume`)."""
        return float(log_volume(self.flat()))

    def edge_lengths(self) -> torch.Tensor:
        """Euclidean distance of every vertex from vertex 0."""
        flat = self.flat().to(torch.float64)
        return (flat - flat[:1]).norm(dim=1)

    def combine(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parameters of the networks at barycentric ``weights``.

        Parameters
        ----------
        weights : Tensor of shape (n_networks, n_vertices)

        Returns
        -------
        dict of str to Tensor of shape (n_networks, ...)
        """
        if weights.dim() != 2 or weights.shape[1] != self.n_vertices:
            raise ValueError(
                f"weights must have shape (n_networks, {self.n_vertices}), got {tuple(weights.shape)}."
            )
        out = {}
        for name, p in self.params.items():
            w = weights.to(device=p.device, dtype=p.dtype)
            out[name] = torch.tensordot(w, p, dims=1)
        return out

    def to(self, *args, **kwargs) -> StackedVertices:
        """Move every stacked tensor (``Tensor.to`` arguments)."""
        return StackedVertices({name: p.to(*args, **kwargs) for name, p in self.params.items()})


def _slice_buffers(
    buffers: Mapping[str, torch.Tensor], batched: frozenset[str], index: slice | int
) -> dict[str, torch.Tensor]:
    return {name: (b[index] if name in batched else b) for name, b in buffers.items()}


def forward_networks_loop(
    module: torch.nn.Module,
    params: Mapping[str, torch.Tensor],
    buffers: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    batched_buffers: frozenset[str] = frozenset(),
) -> torch.Tensor:
    """Evaluate each of ``S`` networks in turn (the simple reference path).

    Parameters
    ----------
    module : torch.nn.Module
        The architecture; its own parameters are not used.
    params : dict of str to Tensor of shape (S, ...)
    buffers : dict of str to Tensor
        Buffers named in ``batched_buffers`` have a leading ``S`` axis, the
        others are shared by all networks.
    x : Tensor
        Input rows.
    batched_buffers : frozenset of str

    Returns
    -------
    Tensor of shape (S, n_rows, ...)
        The module's raw output for every network.
    """
    n_networks = next(iter(params.values())).shape[0]
    outputs = []
    for s in range(n_networks):
        p = {name: t[s] for name, t in params.items()}
        outputs.append(functional_call(module, (p, _slice_buffers(buffers, batched_buffers, s)), (x,)))
    return torch.stack(outputs)


def _forward_networks_vmap(
    module: torch.nn.Module,
    params: Mapping[str, torch.Tensor],
    buffers: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    batched_buffers: frozenset[str],
) -> torch.Tensor:
    buffer_dims = {name: (0 if name in batched_buffers else None) for name in buffers}

    def one(p, b):
        return functional_call(module, (p, b), (x,))

    return vmap(one, in_dims=(0, buffer_dims), randomness="different")(dict(params), dict(buffers))


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def forward_networks(
    module: torch.nn.Module,
    params: Mapping[str, torch.Tensor],
    buffers: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    *,
    batched_buffers: frozenset[str] = frozenset(),
    method: str = "auto",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    network_chunk: int = 32,
    row_chunk: int = 4096,
) -> torch.Tensor:
    """Evaluate ``S`` networks that share an architecture on the same rows.

    Parameters
    ----------
    module : torch.nn.Module
        The architecture, used through ``functional_call`` and never changed.
        Put it in the mode you need (``eval()`` for prediction) beforehand.
    params : dict of str to Tensor of shape (S, ...)
        Stacked parameters of the ``S`` networks.
    buffers : dict of str to Tensor
        Buffers (BatchNorm statistics, ...); those named in
        ``batched_buffers`` have a leading ``S`` axis.
    x : Tensor of shape (n_rows, ...)
    batched_buffers : frozenset of str, default=frozenset()
    method : {"auto", "stacked", "vmap", "loop"}, default="auto"
        ``"stacked"`` evaluates a chunk of networks as one wide network
        (:mod:`~skspro.simplex.stacked`; chains of standard layers in eval
        mode only), ``"vmap"`` in one vectorised call of any module,
        ``"loop"`` one network at a time. ``"auto"`` uses the stacked form,
        else vmap, for row chunks of at most :func:`vmap_row_limit` rows, and
        the loop for larger chunks or where vmap is refused. All give the
        same numbers up to floating-point rounding (tested).
    transform : callable, optional
        Applied to every chunk of outputs (e.g. softmax), before chunks are
        joined, so that only transformed outputs are kept.
    network_chunk : int, default=32
        At most this many networks' parameters are live at once with vmap.
    row_chunk : int, default=4096
        At most this many rows are evaluated per call.

    Returns
    -------
    Tensor of shape (S, n_rows, ...)
    """
    if method not in ("auto", "stacked", "vmap", "loop"):
        raise ValueError(f"method must be 'auto', 'stacked', 'vmap' or 'loop', got {method!r}.")
    batched_buffers = frozenset(batched_buffers)
    n_networks = next(iter(params.values())).shape[0]
    n_rows = x.shape[0]
    limit = vmap_row_limit(module, x.device)
    row_outputs = []
    steps = eval_plan(module) if method in ("auto", "stacked") else None
    stacked = method == "stacked" or (method == "auto" and steps is not None)
    for rows in _chunks(n_rows, row_chunk):
        xr = x[rows]
        small = xr.shape[0] <= limit
        use_stacked = method == "stacked" or (method == "auto" and stacked and small)
        use_vmap = method == "vmap" or (method == "auto" and not use_stacked and small)
        chunked = use_stacked or use_vmap
        net_outputs = []
        for nets in _chunks(n_networks, network_chunk if chunked else n_networks):
            p = {name: t[nets] for name, t in params.items()}
            b = _slice_buffers(buffers, batched_buffers, nets)
            out = None
            if use_stacked:
                try:
                    if steps is None:  # method="stacked" on a module without a wide form: say why
                        stacked_forward(module, p, b, xr, batched_buffers)
                    out = _run(steps, p, b, xr, batched_buffers)
                except Unsupported:
                    if method == "stacked":
                        raise
            if use_vmap or (out is None and use_stacked):
                try:
                    out = _forward_networks_vmap(module, p, b, xr, batched_buffers)
                except RuntimeError:
                    # Some kernels refuse batched inputs (e.g. cuDNN BatchNorm
                    # on large batches); "auto" falls back to the loop.
                    if method == "vmap":
                        raise
            if out is None:
                out = forward_networks_loop(module, p, b, xr, batched_buffers)
            net_outputs.append(transform(out) if transform is not None else out)
        row_outputs.append(torch.cat(net_outputs, dim=0))
    return torch.cat(row_outputs, dim=1)
