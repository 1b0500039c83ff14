"""Training one ensemble member and growing its simplex (no sklearn API here).

One member is an independent job: a cloned skorch net trained from its own
seed, then ``n_vertices`` vertices added one at a time, then ``n_samples``
points drawn for prediction with their normalisation statistics. Jobs run
through joblib, so every input and output here pickles.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import clone
from skorch import NeuralNet
from skorch.history import History

from ._safety import FiniteLossGuard, raise_if_interrupted
from ._training import VertexModule, VertexNet, cosine_schedule, vertex_start
from .simplex import (
    StackedVertices,
    make_generator,
    module_buffers,
    recompute_norm_statistics,
    sample_simplex_weights,
)

__all__ = [
    "SimplexSpec",
    "Member",
    "fit_member",
    "norm_statistics",
    "seeded_torch",
    "start_of_vertex",
    "train_vertex",
]

#: A member keeps its sampled networks' parameters materialised (saving the
#: weighted sum of vertices on every predict call) while they take at most
#: this many bytes; larger ones are combined chunk by chunk at each call.
SAMPLE_CACHE_BYTES = 256 * 2**20
#: On a GPU the limit is 1/16 of the device's memory, at most this (holding
#: the sampled networks costs what a deep ensemble of as many networks holds).
SAMPLE_CACHE_BYTES_GPU_MAX = 4 * 2**30


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


# Settings of a member net that a vertex net inherits (by name or prefix).
_INHERITED = ("criterion", "optimizer", "iterator_train", "iterator_valid", "dataset")
_INHERITED_EXACT = ("batch_size", "device", "predict_nonlinearity", "compile", "use_caching")


@dataclass(frozen=True)
class SimplexSpec:
    """How each member's simplex is grown and sampled."""

    n_vertices: int = 0
    vertex_epochs: int = 10
    vertex_lr: float | None = None
    reg: float = 0.0
    n_train_samples: int = 1
    train_sampling: str = "split"
    n_samples: int = 1


@dataclass
class Member:
    """A trained member and its simplex (see the estimators' attributes)."""

    net: NeuralNet
    simplex: StackedVertices
    sample_weights: torch.Tensor  # (S, k + 1)
    norm_buffers: dict[str, torch.Tensor]  # name -> (S, ...); empty when shared
    log_volumes: list[float] = field(default_factory=list)
    vertex_histories: list[History] = field(default_factory=list)
    fit_time: float = 0.0
    vertex_times: list[float] = field(default_factory=list)
    seed: int = 0
    _prediction_cache: dict | None = field(default=None, repr=False, compare=False)

    def _prediction_tensors(self, device: torch.device, with_params: bool) -> dict:
        """What prediction needs on ``device``: the vertices, sample weights, the
        module's buffers (references) and per-network normalisation statistics;
        with ``with_params`` also the sampled networks' parameters. Not cached."""
        simplex = self.simplex.to(device)
        weights = self.sample_weights.to(device)
        return {
            "device": device,
            "module": self.net.module_,
            "buffers": dict(self.net.module_.named_buffers()),
            "simplex": simplex,
            "weights": weights,
            "norm_buffers": {name: b.to(device) for name, b in self.norm_buffers.items()},
            "params": simplex.combine(weights) if with_params else None,
        }

    def _on(self, device: torch.device) -> dict:
        """:meth:`_prediction_tensors` on ``device``, built once and cached.

        The sampled networks' parameters are kept when they take at most
        :func:`sample_cache_bytes`; otherwise they are combined chunk by chunk
        on the device, from the cached vertices, at each call.
        """
        cache = self._prediction_cache
        if cache is None or cache["device"] != device or cache["module"] is not self.net.module_:
            fits = networks_bytes(self.simplex, len(self.sample_weights)) <= sample_cache_bytes(device)
            cache = self._prediction_cache = self._prediction_tensors(device, with_params=fits)
        return cache

    def sample_params(self, networks: slice, device: torch.device) -> dict[str, torch.Tensor]:
        """Parameters of the sampled networks ``networks`` on ``device``, stacked: (s, ...)."""
        cache = self._on(device)
        if cache["params"] is not None:
            return {name: p[networks] for name, p in cache["params"].items()}
        return cache["simplex"].combine(cache["weights"][networks])

    def sample_buffers(self, networks: slice, device: torch.device) -> dict[str, torch.Tensor]:
        """Buffers for the sampled networks ``networks`` on ``device``.

        The module's buffers, with the per-network normalisation statistics
        (``(s, ...)``, named in ``norm_buffers``) in place of shared ones.
        """
        cache = self._on(device)
        return {**cache["buffers"], **{name: b[networks] for name, b in cache["norm_buffers"].items()}}

    def to_cpu(self) -> Member:
        """Keep the stored tensors on the CPU: a model fitted on a GPU then
        pickles and loads on a machine without one (the skorch net handles its
        own module the same way)."""
        self.simplex = self.simplex.to("cpu")
        self.sample_weights = self.sample_weights.cpu()
        self.norm_buffers = {name: b.cpu() for name, b in self.norm_buffers.items()}
        self._prediction_cache = None
        return self

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_prediction_cache"] = None  # derived; rebuilt on first use
        return state


class StackedMembers:
    """The sampled networks of several members as one stack, for prediction.

    Members share the architecture, so all their networks can be evaluated
    in one wide forward instead of one per member. Duck-types the parts of
    :class:`Member` that prediction uses. Every buffer is stacked per network
    (a member without per-network statistics repeats its own).

    Parameters
    ----------
    members : list of Member
        On one device.
    device : torch.device
    """

    def __init__(self, members: list[Member], device: torch.device) -> None:
        self.net = members[0].net
        self.sample_weights = torch.cat([m.sample_weights for m in members])
        # Built from the vertices, not from the members' own caches, so that
        # the networks' parameters are held once.
        parts = [m._prediction_tensors(device, with_params=True) for m in members]
        self.params = {name: torch.cat([t["params"][name] for t in parts]) for name in parts[0]["params"]}
        self.norm_buffers = {}
        for name in parts[0]["buffers"]:
            self.norm_buffers[name] = torch.cat(
                [
                    t["norm_buffers"][name]
                    if name in t["norm_buffers"]
                    else t["buffers"][name]
                    .unsqueeze(0)
                    .expand(len(m.sample_weights), *t["buffers"][name].shape)
                    for t, m in zip(parts, members)
                ]
            )

    @staticmethod
    def fits(members: list[Member]) -> bool:
        """Whether stacking pays and fits: several members on one device, within the cache size."""
        if len(members) < 2 or len({device_of(m.net) for m in members}) != 1:
            return False
        size = networks_bytes(members[0].simplex, sum(len(m.sample_weights) for m in members))
        return size <= sample_cache_bytes(device_of(members[0].net))

    def sample_params(self, networks: slice, device: torch.device) -> dict[str, torch.Tensor]:
        return {name: p[networks] for name, p in self.params.items()}

    def sample_buffers(self, networks: slice, device: torch.device) -> dict[str, torch.Tensor]:
        return {name: b[networks] for name, b in self.norm_buffers.items()}


def device_of(net: NeuralNet) -> torch.device:
    """The torch device of a skorch net (``None`` means the CPU)."""
    return torch.device(net.device if net.device is not None else "cpu")


#: Seeding forks torch's process-global generators and thread count. Jobs of
#: a thread-based joblib backend share them, so they take this lock and run
#: one at a time; process-based backends (loky, Dask workers with one thread)
#: each have their own lock and run in parallel.
_GLOBAL_STATE_LOCK = threading.RLock()


@contextlib.contextmanager
def seeded_torch(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Seed torch's global generators for the duration of a block only.

    Module initialisation, dropout and DataLoader shuffling of an arbitrary
    user module draw from the global generators; this forks them (the CPU's
    and every visible GPU's), seeds the fork, and restores the caller's state
    on exit, so the user's random state is left exactly as it was.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with _GLOBAL_STATE_LOCK, torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.manual_seed(int(seed))
        yield


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Limit torch's intra-op threads inside a block (``None``: unchanged)."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n_threads)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def member_seeds(seed: int) -> tuple[int, int, int]:
    """Seeds of a member's training, its vertices, and its sample points.

    Derived with ``numpy.random.SeedSequence`` so they do not depend on the
    number of vertices: estimators with the same ``random_state`` share
    bit-identical members, whatever their simplex settings.
    """
    member, vertices, samples = np.random.SeedSequence(int(seed)).generate_state(3)
    return int(member), int(vertices), int(samples)


def vertex_seed(vertices_seed: int, index: int) -> int:
    """Seed of vertex ``index``, independent of how many vertices follow."""
    return int(np.random.SeedSequence([vertices_seed, index]).generate_state(1)[0])


def _vertex_net_kwargs(net: NeuralNet) -> dict:
    params = net.get_params(deep=False)
    kwargs = {
        key: value
        for key, value in params.items()
        if key in _INHERITED_EXACT or key.split("__")[0] in _INHERITED
    }
    kwargs.setdefault("iterator_train__shuffle", True)
    return kwargs


def train_vertex(
    net: NeuralNet,
    pool: StackedVertices,
    buffers: dict[str, torch.Tensor],
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    spec: SimplexSpec,
    *,
    faces: list[list[int]] | None = None,
    reg_scale: float | None = None,
    where: str = "a vertex",
) -> tuple[dict[str, torch.Tensor], History]:
    """Train one new vertex that completes every face of ``pool`` to a simplex.

    Parameters
    ----------
    net : skorch NeuralNet
        A fitted net of the architecture: its module, criterion, optimizer,
        batch size and device are reused.
    pool : StackedVertices
        The frozen vertices.
    buffers : dict
        Buffers for the forward pass (copied).
    X, y : ndarray
        Training data (float32, encoded labels).
    seed : int
    spec : SimplexSpec
        Epochs, learning rate, ``reg``, samples per step.
    faces : list of list of int, optional
        See :class:`~skspro._training.VertexModule`; default: the whole pool.
    reg_scale : float, optional
        Multiplies ``spec.reg``; default the squared norm of vertex 0.
    where : str
        What is trained, for error messages.

    Returns
    -------
    new_vertex : dict of str to Tensor
    history : skorch History
    """
    device = device_of(net)
    pool = pool.to(device)
    generator = make_generator(seed)
    module = VertexModule(
        net.module_,
        pool,
        vertex_start(pool, generator),  # the same draw as start_of_vertex(pool, seed)
        buffers,
        n_train_samples=spec.n_train_samples,
        train_sampling=spec.train_sampling,
        seed=int(torch.randint(2**31 - 1, (1,), generator=generator)),
        faces=faces,
    )
    if reg_scale is None:
        mode = pool.flat()[0].to(torch.float64)
        reg_scale = float(mode.dot(mode))
    vertex_net = VertexNet(
        module=module,
        lr=spec.vertex_lr if spec.vertex_lr is not None else net.lr,
        max_epochs=spec.vertex_epochs,
        train_split=None,
        callbacks=[
            ("lr_scheduler", cosine_schedule(spec.vertex_epochs)),
            ("skspro_finite_loss", FiniteLossGuard(where)),
        ],
        verbose=0,
        reg=spec.reg,
        reg_scale=reg_scale,
        **_vertex_net_kwargs(net),
    )
    with seeded_torch(seed, device):
        vertex_net.fit(X, y)
    raise_if_interrupted()
    return module.new_vertex(), vertex_net.history


def start_of_vertex(pool: StackedVertices, seed: int) -> dict[str, torch.Tensor]:
    """Where :func:`train_vertex` with this ``seed`` starts the new vertex."""
    return vertex_start(pool, make_generator(seed))


def norm_statistics(
    net: NeuralNet,
    pool: StackedVertices,
    weights: torch.Tensor,
    buffers: dict[str, torch.Tensor],
    X: np.ndarray,
) -> dict[str, torch.Tensor]:
    """Normalisation statistics of the networks at ``weights`` (empty if none)."""
    return recompute_norm_statistics(
        net.module_,
        pool.to(device_of(net)).combine(weights),
        buffers,
        _batches(X, net.batch_size, device_of(net)),
    )


def _batches(X: np.ndarray, batch_size: int, device: torch.device) -> list[torch.Tensor]:
    size = batch_size if batch_size and batch_size > 0 else len(X)
    return [torch.as_tensor(X[i : i + size], device=device) for i in range(0, len(X), size)]


def _separate_checkpoints(net: NeuralNet, index: int) -> None:
    """Give each member's checkpoint callbacks a folder of its own.

    Members train in parallel from clones of one template: a ``Checkpoint``
    (or any callback with a ``dirname``) would otherwise have every member
    write the same files. The clone's callbacks are private copies.
    """
    for item in net.callbacks or []:
        callback = item[1] if isinstance(item, tuple) else item
        if isinstance(getattr(callback, "dirname", None), str):
            callback.dirname = os.path.join(callback.dirname or ".", f"member_{index}")


def _guard_loss(net: NeuralNet, where: str) -> None:
    """Add the finite-loss check to a private clone's callbacks."""
    if net.callbacks == "disable":
        return
    callbacks = list(net.callbacks or [])
    callbacks.append(("skspro_finite_loss", FiniteLossGuard(where)))
    net.set_params(callbacks=callbacks)


def fit_member(
    template: NeuralNet,
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    spec: SimplexSpec,
    *,
    name: str = "member",
    index: int = 0,
    device: str | None = None,
    verbose: int = 0,
    n_threads: int | None = None,
    member: Member | None = None,
) -> Member:
    """Train one member from ``template`` and grow its simplex.

    Parameters
    ----------
    template : skorch NeuralNet
        Cloned, never fitted itself.
    X : ndarray of float32
    y : ndarray of int64, encoded labels ``0..n_classes-1``
    seed : int
    spec : SimplexSpec
    name : str
        For progress messages.
    index : int
        Position of the member: checkpoint callbacks of the template write
        to their own sub-folder ``member_<index>``.
    device : str, optional
        Overrides the template's ``device``.
    verbose : int
        Print a line per member and per vertex when > 0.
    n_threads : int, optional
        torch intra-op threads for this job.
    member : Member, optional
        A member fitted before (``warm_start``): its net and vertices are
        kept bit for bit, the missing vertices are added and the sample
        points redrawn. The object itself is not modified.

    Returns
    -------
    Member
        A new object; with the same seed, a warm-started member equals one
        trained from scratch to the same ``spec``.
    """
    seed_member, seed_vertices, seed_samples = member_seeds(seed)
    with _GLOBAL_STATE_LOCK, torch_threads(n_threads):
        if member is None:
            net = clone(template)
            if device is not None:
                net.set_params(device=device)
            _separate_checkpoints(net, index)
            _guard_loss(net, name)
            start = time.perf_counter()
            with seeded_torch(seed_member, device_of(net)):
                net.fit(X, y)
            raise_if_interrupted()
            fit_time = time.perf_counter() - start
            if verbose:
                loss = net.history[-1, "train_loss"] if len(net.history) else math.nan
                print(f"[skspro] {name}: trained in {fit_time:.1f}s (train loss {loss:.4f})", flush=True)
            member = Member(
                net=net,
                simplex=StackedVertices.from_module(net.module_),
                sample_weights=torch.ones((1, 1)),
                norm_buffers={},
                fit_time=fit_time,
                seed=seed,
            )
        if member.simplex.n_vertices - 1 > spec.n_vertices:
            raise ValueError(
                f"A fitted member has {member.simplex.n_vertices - 1} vertices; warm_start can add "
                f"vertices but not remove them (n_vertices={spec.n_vertices}). Refit with warm_start=False."
            )
        net = member.net
        simplex = member.simplex.to(device_of(net))
        buffers = module_buffers(net.module_)
        log_volumes, histories = list(member.log_volumes), list(member.vertex_histories)
        vertex_times = list(member.vertex_times)
        for v in range(simplex.n_vertices - 1, spec.n_vertices):
            start = time.perf_counter()
            vertex, history = train_vertex(
                net,
                simplex,
                buffers,
                X,
                y,
                vertex_seed(seed_vertices, v),
                spec,
                where=f"{name}, vertex {v + 1}",
            )
            simplex = simplex.append(vertex)
            vertex_times.append(time.perf_counter() - start)
            log_volumes.append(simplex.log_volume())
            histories.append(history)
            if verbose:
                print(
                    f"[skspro] {name}: vertex {v + 1}/{spec.n_vertices} in {vertex_times[-1]:.1f}s "
                    f"(train loss {history[-1, 'ce_loss']:.4f}, log-volume {log_volumes[-1]:.2f})",
                    flush=True,
                )
        if spec.n_vertices == 0:
            weights = torch.ones((1, 1))
            norm_buffers: dict[str, torch.Tensor] = {}
        else:
            weights = sample_simplex_weights(simplex.n_vertices, spec.n_samples, make_generator(seed_samples))
            norm_buffers = norm_statistics(net, simplex, weights, buffers, X)
    return Member(
        net=net,
        simplex=simplex,
        sample_weights=weights,
        norm_buffers=norm_buffers,
        log_volumes=log_volumes,
        vertex_histories=histories,
        fit_time=member.fit_time,
        vertex_times=vertex_times,
        seed=seed,
    ).to_cpu()
