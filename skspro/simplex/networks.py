"""The networks a fitted model predicts with, as one object.

Every fit ends by building one :class:`SampledNetworks`: the architecture
(a private copy in eval mode), the networks' stacked parameters (or the
vertices and barycentric weights they are combined from), their buffers
(per-network BatchNorm statistics included) and the device. Prediction,
the connector's scores and path metrics, and :func:`skspro.save` all go
through it. It is immutable once built: everything derived (the
materialised parameters on the device) is built in ``__init__``, and the
one thing a forward pass may touch, a module that
:func:`torch.func.functional_call` swaps parameters into, is borrowed from a
pool of private copies for the duration of a call. So one fitted model can
serve many threads at once.
"""

from __future__ import annotations

import contextlib
import copy
import queue
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .batchnorm import recompute_norm_statistics
from .functional import SimplexPoints, StackedVertices, _n_networks, _select, forward_networks

__all__ = ["NetworkGroup", "SampledNetworks", "networks_bytes", "sample_cache_bytes"]

#: The sampled networks' parameters are kept materialised (saving the
#: weighted sum of vertices on every call) while they take at most this many
#: bytes; larger ones are combined chunk by chunk at each call.
SAMPLE_CACHE_BYTES = 256 * 2**20
#: On a GPU the limit is 1/16 of the device's memory, at most this (holding
#: the sampled networks costs what a deep ensemble of as many networks holds).
SAMPLE_CACHE_BYTES_GPU_MAX = 4 * 2**30
#: Networks evaluated at once (bounds memory in the number of networks).
NETWORK_CHUNK = 32


def networks_bytes(simplex: StackedVertices, n_networks: int) -> int:
    """Bytes of ``n_networks`` materialised networks of ``simplex``'s architecture."""
    first = next(iter(simplex.params.values()))
    return n_networks * simplex.n_params * first.element_size()


def sample_cache_bytes(device: torch.device) -> int:
    """How many bytes of materialised sampled networks are kept on ``device``."""
    if device.type != "cuda":
        return SAMPLE_CACHE_BYTES
    total = torch.cuda.get_device_properties(device).total_memory
    return max(SAMPLE_CACHE_BYTES, min(SAMPLE_CACHE_BYTES_GPU_MAX, total // 16))


@dataclass(frozen=True)
class NetworkGroup:
    """Networks at barycentric points of one simplex, with their buffers.

    Parameters
    ----------
    simplex : StackedVertices
        The vertices.
    weights : Tensor of shape (S, n_vertices)
        Barycentric coordinates of the ``S`` networks.
    buffers : dict of str to Tensor
        The module's buffers, shared by the group's networks.
    norm_buffers : dict of str to Tensor of shape (S, ...)
        Per-network buffers (BatchNorm statistics) that replace shared ones.
    """

    simplex: StackedVertices
    weights: torch.Tensor
    buffers: dict[str, torch.Tensor]
    norm_buffers: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.weights)

    def to(self, device: torch.device | str) -> NetworkGroup:
        """The group with every tensor on ``device``."""
        return NetworkGroup(
            self.simplex.to(device),
            self.weights.to(device),
            {name: b.to(device) for name, b in self.buffers.items()},
            {name: b.to(device) for name, b in self.norm_buffers.items()},
        )


@dataclass(frozen=True)
class _Part:
    """What one forward call evaluates: networks, buffers, which buffers are per network."""

    params: dict[str, torch.Tensor] | SimplexPoints
    buffers: dict[str, torch.Tensor]
    batched: frozenset[str]


def _stack_groups(groups: Sequence[NetworkGroup]) -> _Part:
    """All groups' networks as one stack; every buffer per network."""
    params = [g.simplex.combine(g.weights) for g in groups]
    buffers = {
        name: torch.cat(
            [
                g.norm_buffers[name]
                if name in g.norm_buffers
                else g.buffers[name].unsqueeze(0).expand(len(g), *g.buffers[name].shape)
                for g in groups
            ]
        )
        for name in groups[0].buffers
    }
    stacked = {name: torch.cat([p[name] for p in params]) for name in params[0]}
    return _Part(stacked, buffers, frozenset(buffers))


def _group_part(group: NetworkGroup, limit: int) -> _Part:
    fits = networks_bytes(group.simplex, len(group)) <= limit
    params = group.simplex.combine(group.weights) if fits else SimplexPoints(group.simplex, group.weights)
    return _Part(params, {**group.buffers, **group.norm_buffers}, frozenset(group.norm_buffers))


class SampledNetworks:
    """The networks a fitted model predicts with, ready on one device.

    Parameters
    ----------
    module : torch.nn.Module
        The architecture (copied; the copy is put in eval mode).
    groups : sequence of NetworkGroup
        The networks, in order: one group per member of an ensemble, or one
        for a connector's complex.
    nonlinearity : callable, optional
        Turns a network's outputs (in float64) into probabilities (e.g.
        skorch's ``net._get_predict_nonlinearity()``). Default: identity.
    device : str or torch.device, default="cpu"
        Where the networks are evaluated. ``groups`` are kept as given (the
        estimators give CPU tensors); what is evaluated is built on
        ``device``.

    Notes
    -----
    Several groups are evaluated as one stack (one wide forward) while
    their networks' parameters fit in :func:`sample_cache_bytes`; otherwise
    group by group, each materialised within that limit or combined chunk by
    chunk. The order of operations is fixed by the groups, so the same
    networks give the same numbers to the last bit on the same device.

    Examples
    --------
    >>> import torch
    >>> from skspro.modules import MLP
    >>> from skspro.simplex import NetworkGroup, SampledNetworks, StackedVertices, module_buffers
    >>> net, other = MLP(4, 3, hidden_units=(8,)), MLP(4, 3, hidden_units=(8,))
    >>> simplex = StackedVertices.from_module(net).append(dict(other.named_parameters()))
    >>> group = NetworkGroup(simplex, torch.tensor([[0.5, 0.5], [0.2, 0.8]]), module_buffers(net), {})
    >>> networks = SampledNetworks(net, [group], nonlinearity=lambda z: torch.softmax(z, -1))
    >>> networks.n_networks, networks.predict_proba_networks(torch.zeros(5, 4)).shape
    (2, (2, 5, 3))
    """

    def __init__(
        self,
        module: torch.nn.Module,
        groups: Sequence[NetworkGroup],
        *,
        nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not groups or any(len(g) == 0 for g in groups):
            raise ValueError("SampledNetworks needs at least one group, each with at least one network.")
        self.device = torch.device(device)
        self.groups = tuple(groups)
        self.nonlinearity = nonlinearity
        self.module = copy.deepcopy(module).to(self.device).eval()
        self._parts = self._build_parts()
        self._spare_modules: queue.SimpleQueue = queue.SimpleQueue()

    def _build_parts(self) -> tuple[_Part, ...]:
        limit = sample_cache_bytes(self.device)
        on_device = [g.to(self.device) for g in self.groups]
        if len(on_device) > 1 and networks_bytes(on_device[0].simplex, self.n_networks) <= limit:
            return (_stack_groups(on_device),)
        return tuple(_group_part(g, limit) for g in on_device)

    @property
    def n_networks(self) -> int:
        """Number of networks."""
        return sum(len(g) for g in self.groups)

    @contextlib.contextmanager
    def _borrowed_module(self) -> Iterator[torch.nn.Module]:
        """A private copy of the architecture for one call (``functional_call``
        swaps parameters into the module it runs); returned to the pool after."""
        try:
            module = self._spare_modules.get_nowait()
        except queue.Empty:
            module = copy.deepcopy(self.module)
        try:
            yield module
        finally:
            self._spare_modules.put(module)

    def forward(self, x: torch.Tensor, *, reduce: bool = False, proba: bool = True) -> torch.Tensor:
        """Outputs of every network on ``x``, on :attr:`device`.

        Parameters
        ----------
        x : Tensor of shape (n_rows, ...)
        reduce : bool, default=False
            Return the sum over networks, ``(n_rows, n_outputs)``.
        proba : bool, default=True
            Apply the nonlinearity (in float64); ``False`` gives raw outputs.

        Returns
        -------
        Tensor of shape (n_networks, n_rows, n_outputs), or (n_rows, n_outputs)
        """
        transform = self._to_proba if proba else None
        x = x.to(self.device)
        # OpenMP's and MKL's thread counts are per thread: a thread's first
        # call runs with the libraries' default, not torch's setting, and
        # rounds differently. Every calling thread computes as the main one.
        torch.set_num_threads(torch.get_num_threads())
        outputs = []
        with torch.no_grad(), self._borrowed_module() as module:
            for part in self._parts:
                outputs.append(
                    forward_networks(
                        module,
                        part.params,
                        part.buffers,
                        x,
                        batched_buffers=part.batched,
                        transform=transform,
                        reduce=reduce,
                        network_chunk=NETWORK_CHUNK,
                    )
                )
        if not reduce:
            return outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        total = outputs[0]
        for out in outputs[1:]:
            total = total + out
        return total

    def _to_proba(self, outputs: torch.Tensor) -> torch.Tensor:
        outputs = outputs.to(torch.float64)
        return outputs if self.nonlinearity is None else self.nonlinearity(outputs)

    def predict_proba(self, x: torch.Tensor) -> np.ndarray:
        """Mean probabilities over all networks, ``(n_rows, n_classes)`` (one host copy)."""
        return (self.forward(x, reduce=True) / self.n_networks).cpu().numpy()

    def predict_proba_networks(self, x: torch.Tensor) -> np.ndarray:
        """Probabilities of every network, ``(n_networks, n_rows, n_classes)``."""
        return self.forward(x).cpu().numpy()

    def at_centroids(self, norm_batches: Sequence[torch.Tensor] | None = None) -> SampledNetworks:
        """One network per group, at the centroid of the group's simplex.

        The single-network path of a simplex (the "midpoint" of learning
        subspaces, Wortsman et al., 2021): one forward per group instead of
        one per sampled network.

        Parameters
        ----------
        norm_batches : sequence of Tensor, optional
            Training inputs on which the centroids' BatchNorm statistics are
            re-estimated (one pass per group). Without them, a group with
            per-network statistics gets their mean over its networks: exact
            to first order in the distance between the networks and the
            centroid (the sampled points average to the centroid), measured
            in docs/method.rst. Modules without BatchNorm need neither.

        Returns
        -------
        SampledNetworks
            ``len(groups)`` networks, on the same device.
        """
        groups = []
        for group in self.groups:
            n = group.simplex.n_vertices
            weights = torch.full((1, n), 1.0 / n, dtype=group.weights.dtype)
            if not group.norm_buffers:
                norm = {}
            elif norm_batches is not None:
                simplex = group.simplex.to(self.device)
                buffers = {name: b.to(self.device) for name, b in group.buffers.items()}
                params = simplex.combine(weights.to(self.device))
                norm = recompute_norm_statistics(self.module, params, buffers, norm_batches)
                norm = {name: b.cpu() for name, b in norm.items()}
            else:
                norm = {
                    name: (b.double().mean(0, keepdim=True).to(b.dtype) if b.is_floating_point() else b[:1])
                    for name, b in group.norm_buffers.items()
                }
            groups.append(NetworkGroup(group.simplex, weights, group.buffers, norm))
        return SampledNetworks(self.module, groups, nonlinearity=self.nonlinearity, device=self.device)

    def to_modules(self) -> list[torch.nn.Module]:
        """Every network as an ordinary module in eval mode (copies, on :attr:`device`), in order.

        What a user without skspro would run: a Python loop over these is
        the baseline the benchmarks compare the vectorised forward against.
        """
        modules = []
        for part in self._parts:
            for s in range(_n_networks(part.params)):
                network = copy.deepcopy(self.module)
                params = _select(part.params, slice(s, s + 1))
                with torch.no_grad():
                    for name, value in params.items():
                        network.get_parameter(name).copy_(value[0])
                    for name, value in part.buffers.items():
                        network.get_buffer(name).copy_(value[s] if name in part.batched else value)
                modules.append(network)
        return modules

    def __getstate__(self) -> dict:
        # The recipe only: derived tensors and the module pool are rebuilt.
        return {
            "module": copy.deepcopy(self.module).cpu(),
            "groups": [g.to("cpu") for g in self.groups],
            "nonlinearity": self.nonlinearity,
            "device": str(self.device),
        }

    def __setstate__(self, state: dict) -> None:
        device = torch.device(state["device"])
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")  # as skorch does for a net pickled on a GPU
        self.__init__(state["module"], state["groups"], nonlinearity=state["nonlinearity"], device=device)

    def __repr__(self) -> str:
        return f"SampledNetworks({self.n_networks} networks in {len(self.groups)} groups on {self.device})"
