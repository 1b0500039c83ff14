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

from .stacked import Unsupported, _run, eval_plan, run_single, stacked_forward
from .volume import log_volume

__all__ = [
    "StackedVertices",
    "module_params",
    "module_buffers",
    "forward_networks",
    "forward_networks_loop",
    "SimplexPoints",
    "VMAP_MAX_ROWS",
    "vmap_row_limit",
]

#: Up to this many rows per call, :func:`forward_networks` evaluates sampled
#: networks with ``vmap``; above it, one network after the other. One small
#: batch leaves the hardware idle and vmap fills it; at large batches a single
#: network already does, and vmap turns convolutions into slower grouped ones.
VMAP_MAX_ROWS = 256
#: The limit for convolutional modules on the CPU, where grouped convolutions
#: lose to the network-by-network loop from about 128 rows on (measured on
#: small CNNs with and without BatchNorm, 2 cores; at 32-64 rows the wide
#: forward is 1.5-2x faster than the loop: benchmarks/results/speed-cpu-prediction.md).
VMAP_MAX_ROWS_CPU_CONV = 64


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


class SimplexPoints:
    """The networks at barycentric ``weights`` of a simplex, combined on demand.

    :func:`forward_networks` takes it in place of stacked parameters when
    holding all networks at once would cost too much memory: each chunk of
    networks is combined from the vertices when it is evaluated.

    Parameters
    ----------
    simplex : StackedVertices
    weights : Tensor of shape (S, n_vertices)
    """

    def __init__(self, simplex: StackedVertices, weights: torch.Tensor) -> None:
        self.simplex, self.weights = simplex, weights

    def __len__(self) -> int:
        return len(self.weights)

    def select(self, networks: slice) -> dict[str, torch.Tensor]:
        """Stacked parameters ``(s, ...)`` of the networks ``networks``."""
        return self.simplex.combine(self.weights[networks])


def _select(params: Mapping[str, torch.Tensor] | SimplexPoints, networks: slice) -> dict[str, torch.Tensor]:
    if isinstance(params, SimplexPoints):
        return params.select(networks)
    return {name: t[networks] for name, t in params.items()}


def _n_networks(params: Mapping[str, torch.Tensor] | SimplexPoints) -> int:
    return len(params) if isinstance(params, SimplexPoints) else next(iter(params.values())).shape[0]


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
        :func:`~torch.func.functional_call` swaps the networks' parameters
        into it while it runs, so it must not be shared between threads.
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
    return _one_by_one(lambda p, b: functional_call(module, (p, b), (x,)), params, buffers, batched_buffers)


def _one_by_one(call, params, buffers, batched_buffers) -> torch.Tensor:
    """``call(params, buffers)`` for each network's own parameters and buffers, stacked."""
    outputs = []
    for s in range(_n_networks(params)):
        p = {name: t[s] for name, t in params.items()}
        outputs.append(call(p, _slice_buffers(buffers, batched_buffers, s)))
    return torch.stack(outputs)


def _forward_networks_vmap(module, params, buffers, x, batched_buffers) -> torch.Tensor:
    buffer_dims = {name: (0 if name in batched_buffers else None) for name in buffers}

    def one(p, b):
        return functional_call(module, (p, b), (x,))

    return vmap(one, in_dims=(0, buffer_dims), randomness="different")(dict(params), dict(buffers))


def _forward_chain_loop(steps, params, buffers, x, batched_buffers) -> torch.Tensor:
    """One network at a time through the chain's plain layer calls: the numbers
    of the functional loop, without the per-call cost of ``functional_call``
    and without touching the module."""
    return _one_by_one(lambda p, b: run_single(steps, p, b, x), params, buffers, batched_buffers)


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _evaluate(method, module, steps, params, buffers, x, batched) -> torch.Tensor:
    """One chunk of networks on one chunk of rows, by ``method``, with the fallbacks of ``"auto"``.

    ``"auto"`` here is already resolved by row count: ``"auto-small"`` tries
    the stacked form, then vmap; ``"auto-large"`` the chain loop, then the
    functional loop.
    """
    if method in ("stacked", "auto-small") and steps is not None:
        try:
            return _run(steps, params, buffers, x, batched)
        except Unsupported:  # a shape without a stacked form (e.g. Linear on 3-D inputs)
            if method == "stacked":
                raise
    if method == "auto-large" and steps is not None:
        return _forward_chain_loop(steps, params, buffers, x, batched)
    if method in ("vmap", "auto-small"):
        try:
            return _forward_networks_vmap(module, params, buffers, x, batched)
        except RuntimeError:
            # Some kernels refuse batched inputs (e.g. cuDNN BatchNorm on
            # large batches); "auto" falls back to the loop.
            if method == "vmap":
                raise
    return forward_networks_loop(module, params, buffers, x, batched)


def forward_networks(
    module: torch.nn.Module,
    params: Mapping[str, torch.Tensor] | SimplexPoints,
    buffers: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    *,
    batched_buffers: frozenset[str] = frozenset(),
    method: str = "auto",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    reduce: bool = False,
    network_chunk: int = 32,
    row_chunk: int = 4096,
) -> torch.Tensor:
    """Evaluate ``S`` networks that share an architecture on the same rows.

    Parameters
    ----------
    module : torch.nn.Module
        The architecture, never changed; put it in the mode you need
        (``eval()`` for prediction) beforehand. The vmap and loop paths swap
        the networks' parameters into it while they run
        (:func:`~torch.func.functional_call`), so one module must not be
        used by two threads at once (:class:`SampledNetworks` keeps private
        copies); the stacked paths only read its structure.
    params : dict of str to Tensor of shape (S, ...), or SimplexPoints
        Stacked parameters of the ``S`` networks, or a simplex and the
        barycentric weights of its networks (combined chunk by chunk).
    buffers : dict of str to Tensor
        Buffers (BatchNorm statistics, ...); those named in
        ``batched_buffers`` have a leading ``S`` axis.
    x : Tensor of shape (n_rows, ...)
    batched_buffers : frozenset of str, default=frozenset()
    method : {"auto", "stacked", "vmap", "loop"}, default="auto"
        ``"stacked"`` evaluates a chunk of networks as one wide network
        (:mod:`~skspro.simplex.stacked`; chains of standard layers in eval
        mode only), ``"vmap"`` in one vectorised call of any module,
        ``"loop"`` one network at a time through ``functional_call``.
        ``"auto"``: for row chunks of at most :func:`vmap_row_limit` rows the
        stacked form, else vmap; for larger chunks one network at a time,
        through the chain's plain layers where the module is a chain, else
        ``functional_call``. All give the same numbers up to floating-point
        rounding (tested).
    transform : callable, optional
        Applied to every chunk of outputs (e.g. softmax), before chunks are
        joined, so that only transformed outputs are kept.
    reduce : bool, default=False
        Return the sum over the networks, ``(n_rows, ...)``, summed chunk by
        chunk, instead of every network's output.
    network_chunk : int, default=32
        At most this many networks are evaluated (and, for
        :class:`SimplexPoints`, combined) at once: memory is bounded in
        ``S``.
    row_chunk : int, default=4096
        At most this many rows are evaluated per call: memory is bounded in
        the number of rows.

    Returns
    -------
    Tensor of shape (S, n_rows, ...), or (n_rows, ...) with ``reduce``
    """
    if method not in ("auto", "stacked", "vmap", "loop"):
        raise ValueError(f"method must be 'auto', 'stacked', 'vmap' or 'loop', got {method!r}.")
    batched_buffers = frozenset(batched_buffers)
    steps = eval_plan(module) if method in ("auto", "stacked") else None
    if method == "stacked" and steps is None:
        stacked_forward(module, _select(params, slice(0, 1)), buffers, x[:1], batched_buffers)  # says why
    limit = vmap_row_limit(module, x.device)
    outputs = []
    for nets in _chunks(_n_networks(params), network_chunk):
        p, b = _select(params, nets), _slice_buffers(buffers, batched_buffers, nets)
        row_outputs = []
        for rows in _chunks(x.shape[0], row_chunk):
            chosen = (
                method
                if method != "auto"
                else ("auto-small" if rows.stop - rows.start <= limit else "auto-large")
            )
            out = _evaluate(chosen, module, steps, p, b, x[rows], batched_buffers)
            row_outputs.append(transform(out) if transform is not None else out)
        out = row_outputs[0] if len(row_outputs) == 1 else torch.cat(row_outputs, dim=1)
        outputs.append(out.sum(0) if reduce else out)
    if len(outputs) == 1:
        return outputs[0]
    return torch.stack(outputs).sum(0) if reduce else torch.cat(outputs)
