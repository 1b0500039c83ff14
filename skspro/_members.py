"""Training one ensemble member and growing its simplex (no sklearn API here).

One member is an independent job: a cloned skorch net trained from its own
seed, then ``n_vertices`` vertices added one at a time, then ``n_samples``
points drawn for prediction with their normalisation statistics. Jobs run
through joblib, so every input and output here pickles.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone
from skorch import NeuralNet
from skorch.history import History

from ._devices import check_template_device, resolve_devices
from ._inputs import check_copyable, check_output_size, check_training_steps
from ._memory import MemberCache, member_cache
from ._progress import epoch_progress_callbacks, member_verbose, progress_bar
from ._safety import FiniteLossGuard, caller_stacklevel, raise_if_interrupted
from ._training import (
    VertexModule,
    VertexNet,
    VertexWeightDecay,
    check_vertex_weight_decay,
    cosine_schedule,
    vertex_start,
)
from ._validation import (
    SimplexValidation,
    Validation,
    early_stopping_callbacks,
    member_settings,
    networks_nll,
)
from ._weights import check_sample_weight_support, row_weighted, weighted_inputs
from .simplex import (
    IncrementalLogVolume,
    NetworkGroup,
    SampledNetworks,
    StackedVertices,
    make_generator,
    module_buffers,
    recompute_norm_statistics,
    sample_simplex_weights,
)

__all__ = [
    "SimplexSpec",
    "Member",
    "TrainedVertex",
    "fit_member",
    "fit_members",
    "networks_of",
    "norm_statistics",
    "sampled_networks",
    "seeded_torch",
    "train_vertex",
]


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
    vertex_weight_decay: float | str = 0.0
    n_train_samples: int = 1
    train_sampling: str = "split"
    n_samples: int = 1

    def check(self, template: NeuralNet) -> None:
        """Refuse, before any training, what vertex training would refuse."""
        if self.n_vertices:
            lr = self.vertex_lr if self.vertex_lr is not None else template_lr(template)
            check_vertex_weight_decay(self.vertex_weight_decay, lr)


@dataclass(frozen=True)
class Member:
    """A trained member and its simplex (see the estimators' attributes).

    The result of one member job; never modified (a warm start makes a new
    one). What prediction needs is built from it by :func:`sampled_networks`.
    """

    net: NeuralNet
    simplex: StackedVertices
    sample_weights: torch.Tensor  # (S, k + 1)
    norm_buffers: dict[str, torch.Tensor]  # name -> (S, ...); empty when shared
    log_volumes: tuple[float, ...] = ()
    vertex_histories: tuple[History, ...] = ()
    fit_time: float = 0.0
    vertex_times: tuple[float, ...] = ()
    seed: int = 0
    validation_nlls: tuple[float, ...] = ()  # held-out NLL: member, then each vertex tried

    def network_group(self) -> NetworkGroup:
        """The member's prediction networks (its module's buffers, per-network statistics)."""
        return NetworkGroup(
            self.simplex, self.sample_weights, module_buffers(self.net.module_), self.norm_buffers
        )

    def to_cpu(self) -> Member:
        """The member with its stored tensors on the CPU: a model fitted on a
        GPU then pickles and loads on a machine without one (the skorch net
        handles its own module the same way)."""
        return replace(
            self,
            simplex=self.simplex.to("cpu"),
            sample_weights=self.sample_weights.cpu(),
            norm_buffers={name: b.cpu() for name, b in self.norm_buffers.items()},
        )


def networks_of(net: NeuralNet, groups: list[NetworkGroup]) -> SampledNetworks:
    """:class:`SampledNetworks` of ``net``'s architecture, nonlinearity and device."""
    return SampledNetworks(
        net.module_, groups, nonlinearity=net._get_predict_nonlinearity(), device=device_of(net)
    )


def sampled_networks(members: list[Member]) -> SampledNetworks:
    """The one object that predicts with all members' networks, on the first member's device."""
    return networks_of(members[0].net, [m.network_group() for m in members])


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


def template_lr(net: NeuralNet) -> float:
    """The learning rate the template's optimizer runs at (skorch's
    ``optimizer__lr`` overrides ``lr``)."""
    return net.get_params(deep=False).get("optimizer__lr", net.lr)


def _vertex_net_kwargs(net: NeuralNet) -> dict:
    params = net.get_params(deep=False)
    kwargs = {
        key: value
        for key, value in params.items()
        if key in _INHERITED_EXACT or key.split("__")[0] in _INHERITED
    }
    kwargs.pop("optimizer__lr", None)  # the vertex's rate is its own ``lr``
    if not {"iterator_train__sampler", "iterator_train__batch_sampler"} & set(kwargs):
        kwargs.setdefault("iterator_train__shuffle", True)  # a sampler excludes shuffle
    return kwargs


@dataclass(frozen=True)
class TrainedVertex:
    """What :func:`train_vertex` returns.

    ``vertex`` is the trained vertex; ``start`` the flat vertex where its
    training started; ``faces`` the log-volume of each simplex it completes
    (with the frozen faces' factorisations built once, for training), so
    heights and volumes after training come from the same objects.
    """

    vertex: dict[str, torch.Tensor]
    history: History
    start: torch.Tensor
    faces: list[IncrementalLogVolume]

    def flat(self) -> torch.Tensor:
        """The trained vertex, flat, in the order and dtype of ``start``."""
        return torch.cat([v.reshape(-1) for v in self.vertex.values()])

    def mean_height(self, flat_vertex: torch.Tensor) -> float:
        """Mean height of a flat vertex above the frozen faces."""
        return float(torch.stack([face.height(flat_vertex).norm() for face in self.faces]).mean())


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
    verbose: int = 0,
    sample_weight: np.ndarray | None = None,
    class_weights: np.ndarray | None = None,
    validation: Validation | None = None,
) -> TrainedVertex:
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
        Seeds the start point and the sampled training networks.
    spec : SimplexSpec
        Epochs, learning rate, ``reg``, samples per step.
    faces : list of list of int, optional
        See :class:`~skspro._training.VertexModule`; default: the whole pool.
    reg_scale : float, optional
        Multiplies ``spec.reg``; default the squared norm of vertex 0.
    where : str
        What is trained, for error messages and the progress bar.
    verbose : int, default=0
        The estimator's ``verbose``: at 2 or more, a bar over the epochs.
    sample_weight : ndarray of shape (n_samples,), optional
        Weights of the rows in the loss (:mod:`skspro._weights`).
    class_weights : ndarray of shape (n_classes,), optional
        The criterion's per-class ``weight``; default: ``net``'s own.
    validation : Validation, optional
        Held-out rows: the vertex of the epoch with the lowest held-out NLL
        of networks sampled from the simplex is kept, and training stops
        after ``n_iter_no_change`` epochs without improvement
        (:mod:`skspro._validation`).

    Returns
    -------
    TrainedVertex
    """
    device = device_of(net)
    pool = pool.to(device)
    generator = make_generator(seed)
    module = VertexModule(
        net.module_,
        pool,
        vertex_start(pool, generator),
        buffers,
        n_train_samples=spec.n_train_samples,
        train_sampling=spec.train_sampling,
        seed=int(torch.randint(2**31 - 1, (1,), generator=generator)),
        faces=faces,
    )
    start = module.vertex.detach().clone()
    if reg_scale is None:
        mode = pool.flat()[0].to(torch.float64)
        reg_scale = float(mode.dot(mode))
    kwargs = _vertex_net_kwargs(net)
    if class_weights is not None:
        kwargs["criterion__weight"] = torch.as_tensor(class_weights)
    member_lr = template_lr(net)
    lr = spec.vertex_lr if spec.vertex_lr is not None else member_lr
    vertex_net = VertexNet(
        module=module,
        lr=lr,
        max_epochs=spec.vertex_epochs,
        train_split=None,
        callbacks=[
            ("lr_scheduler", cosine_schedule(spec.vertex_epochs)),
            *_weight_decay(spec.vertex_weight_decay, member_lr),
            ("skspro_finite_loss", FiniteLossGuard(where)),
            *epoch_progress_callbacks(verbose, where),
            *_vertex_validation(validation, seed),
        ],
        verbose=0,
        reg=spec.reg,
        reg_scale=reg_scale,
        **kwargs,
    )
    with seeded_torch(seed, device):
        vertex_net.fit(weighted_inputs(X, sample_weight), y)
    raise_if_interrupted()
    return TrainedVertex(module.new_vertex(), vertex_net.history, start, module.volumes)


def _warn_if_shared_initialisation(template: NeuralNet, n_members: int, owner: str) -> None:
    """Members of a template that holds a module *object* all start from its
    weights (skorch uses the object as it is): say so, since independent
    initialisations are what makes an ensemble."""
    if n_members > 1 and isinstance(template.get_params(deep=False)["module"], torch.nn.Module):
        warnings.warn(
            f"{owner}: the template's module is a torch.nn.Module object, so all {n_members} members "
            "start from its weights and differ only in the order of their minibatches. Pass the module "
            "class with its arguments as module__<name> (e.g. NeuralNetClassifier(MyNet, module__width=64)) "
            "for independently initialised members seeded by random_state.",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def _weight_decay(value: float | str, member_lr: float) -> list:
    return [("skspro_weight_decay", VertexWeightDecay(value, member_lr))] if value != 0 else []


def _vertex_validation(validation: Validation | None, seed: int) -> list:
    if validation is None:
        return []
    scoring = ("skspro_valid_nll", SimplexValidation(validation, seed=vertex_seed(seed, 1)))
    return [scoring, *early_stopping_callbacks(validation, "valid_nll")]


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


def _guard_loss(net: NeuralNet, where: str, verbose: int = 0) -> None:
    """Add the finite-loss check (and, by ``verbose``, a bar over epochs) to a private clone's callbacks."""
    if net.callbacks == "disable":
        return
    callbacks = list(net.callbacks or [])
    callbacks += [("skspro_finite_loss", FiniteLossGuard(where)), *epoch_progress_callbacks(verbose, where)]
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
    sample_weight: np.ndarray | None = None,
    cache: MemberCache | None = None,
    validation: Validation | None = None,
) -> Member:
    """Train one member from ``template`` and grow its simplex.

    Parameters
    ----------
    template : skorch NeuralNet
        Cloned, never fitted itself.
    X : ndarray of float32
    y : ndarray of int64, encoded labels ``0..n_classes-1``
    seed : int
        The member's seed: its training, vertices and sample points derive
        from it (:func:`member_seeds`).
    spec : SimplexSpec
    name : str
        For progress messages.
    index : int
        Position of the member: checkpoint callbacks of the template write
        to their own sub-folder ``member_<index>``.
    device : str, optional
        Overrides the template's ``device``.
    verbose : int
        The estimator's ``verbose`` (levels in :mod:`skspro._progress`).
    n_threads : int, optional
        torch intra-op threads for this job.
    member : Member, optional
        A member fitted before (``warm_start``): its net and vertices are
        kept bit for bit, the missing vertices are added and the sample
        points redrawn. The object itself is not modified.
    sample_weight : ndarray of shape (n_samples,), optional
        Weights of the rows in the member's and the vertices' losses.
    cache : MemberCache, optional
        Where the member net and the vertices are looked up before they are
        trained, and stored after (:mod:`skspro._memory`).
    validation : Validation, optional
        Held-out rows that decide when the member and each vertex stop
        training and whether a trained vertex joins the simplex
        (:mod:`skspro._validation`).

    Returns
    -------
    Member
        A new object; with the same seed, a warm-started member equals one
        trained from scratch to the same ``spec``.
    """
    seed_member, seed_vertices, seed_samples = member_seeds(seed)
    with _GLOBAL_STATE_LOCK, torch_threads(n_threads):
        if member is None:
            member = _train_net(
                template,
                X,
                y,
                seed,
                seed_member,
                name=name,
                index=index,
                device=device,
                verbose=verbose,
                sample_weight=sample_weight,
                cache=cache,
                validation=validation,
            )
        if member.simplex.n_vertices - 1 > spec.n_vertices:
            raise ValueError(
                f"A fitted member has {member.simplex.n_vertices - 1} vertices; warm_start can add "
                f"vertices but not remove them (n_vertices={spec.n_vertices}). Refit with warm_start=False."
            )
        grow = dict(name=name, verbose=verbose, sample_weight=sample_weight, cache=cache)
        if validation is None:
            grown = _grow_simplex(member, X, y, seed_vertices, spec, **grow)
            weights, norm_buffers = _prediction_points(grown, X, spec, seed_samples)
            grown = replace(grown, sample_weights=weights, norm_buffers=norm_buffers)
        else:
            grown = _grow_validated(member, X, y, seed_vertices, seed_samples, spec, validation, **grow)
    return grown.to_cpu()


def _grow_validated(member: Member, X, y, seed_vertices, seed_samples, spec, validation, **grow) -> Member:
    """``member`` grown one vertex at a time while the held-out NLL of its
    prediction networks improves, with those networks (see :mod:`skspro._validation`)."""

    def with_points(candidate: Member) -> Member:
        points = replace(spec, n_vertices=candidate.simplex.n_vertices - 1)
        weights, norm_buffers = _prediction_points(candidate, X, points, seed_samples)
        candidate = replace(candidate, sample_weights=weights, norm_buffers=norm_buffers)
        nll = networks_nll(sampled_networks([candidate]), validation)
        return replace(candidate, validation_nlls=(*candidate.validation_nlls, nll))

    best = with_points(replace(member, validation_nlls=()))
    tried = best.validation_nlls
    while best.simplex.n_vertices - 1 < spec.n_vertices:
        step = replace(spec, n_vertices=best.simplex.n_vertices)
        candidate = with_points(_grow_simplex(best, X, y, seed_vertices, step, validation=validation, **grow))
        tried = candidate.validation_nlls
        if not candidate.validation_nlls[-1] < best.validation_nlls[-1]:
            break  # the simplex without this vertex predicts better: it stops here
        best = candidate
    return replace(best, validation_nlls=tried)


def _train_net(
    template: NeuralNet,
    X,
    y,
    seed: int,
    seed_member: int,
    *,
    name: str,
    index: int,
    device,
    verbose: int,
    sample_weight: np.ndarray | None = None,
    cache: MemberCache | None = None,
    validation: Validation | None = None,
) -> Member:
    """A member without vertices: a private clone of the template, trained from
    ``seed_member`` (or, with ``cache``, the same net stored by an earlier fit)."""
    net = clone(template)
    net.set_params(verbose=member_verbose(verbose, template.verbose))
    if device is not None:
        net.set_params(device=device)
    _separate_checkpoints(net, index)
    _guard_loss(net, name, verbose)
    if validation is not None:
        net.set_params(**member_settings(validation))
        net.set_params(callbacks=[*net.callbacks, *early_stopping_callbacks(validation, "valid_loss")])
    with seeded_torch(seed_member, device_of(net)):
        stored = cache.load_net(net, seed_member) if cache is not None else None
    if stored is not None:
        net, fit_time = stored
    else:
        start = time.perf_counter()
        with seeded_torch(seed_member, device_of(net)), row_weighted(net, X, sample_weight) as inputs:
            net.fit(inputs, y)
        raise_if_interrupted()
        fit_time = time.perf_counter() - start
        if cache is not None:
            cache.store_net(net, seed_member, fit_time)
    return Member(
        net=net,
        simplex=StackedVertices.from_module(net.module_),
        sample_weights=torch.ones((1, 1)),
        norm_buffers={},
        fit_time=fit_time,
        seed=seed,
    )


def _grow_simplex(
    member: Member,
    X,
    y,
    seed_vertices: int,
    spec: SimplexSpec,
    *,
    name: str,
    verbose: int,
    sample_weight=None,
    cache=None,
    validation: Validation | None = None,
):
    """``member`` with vertices added up to ``spec.n_vertices`` (a new Member; earlier vertices kept)."""
    net = member.net
    simplex = member.simplex.to(device_of(net))
    buffers = module_buffers(net.module_)
    log_volumes, histories, times = (
        list(member.log_volumes),
        list(member.vertex_histories),
        list(member.vertex_times),
    )
    missing = range(simplex.n_vertices - 1, spec.n_vertices)
    bar = progress_bar(
        missing, verbose=verbose if missing else 0, desc=f"{name} vertices", unit="vertex", leave=False
    )
    for v in bar:
        start = time.perf_counter()
        where, seed = f"{name}, vertex {v + 1}", vertex_seed(seed_vertices, v)
        stored = cache.load_vertex(net, simplex, buffers, seed, spec) if cache is not None else None
        if stored is None:
            trained = train_vertex(
                net,
                simplex,
                buffers,
                X,
                y,
                seed,
                spec,
                where=where,
                verbose=verbose,
                sample_weight=sample_weight,
                validation=validation,
            )
            stored = trained.vertex, trained.history, time.perf_counter() - start
            if cache is not None:
                cache.store_vertex(net, simplex, buffers, seed, spec, *stored)
        vertex, history, seconds = stored
        simplex = simplex.append(vertex)
        times.append(seconds)
        log_volumes.append(simplex.log_volume())
        histories.append(history)
    return replace(
        member,
        simplex=simplex,
        log_volumes=tuple(log_volumes),
        vertex_histories=tuple(histories),
        vertex_times=tuple(times),
    )


def _prediction_points(member: Member, X, spec: SimplexSpec, seed_samples: int):
    """The prediction networks' barycentric weights and normalisation statistics."""
    if spec.n_vertices == 0:
        return torch.ones((1, 1)), {}
    simplex = member.simplex
    weights = sample_simplex_weights(simplex.n_vertices, spec.n_samples, make_generator(seed_samples))
    return weights, norm_statistics(member.net, simplex, weights, module_buffers(member.net.module_), X)


def fit_members(
    template: NeuralNet,
    X: np.ndarray,
    y: np.ndarray,
    classes: np.ndarray,
    spec: SimplexSpec,
    seeds: np.ndarray,
    *,
    owner: str,
    n_jobs: int | None = None,
    device: str | None = None,
    verbose: int = 0,
    previous: list[Member] | None = None,
    sample_weight: np.ndarray | None = None,
    memory=None,
    validation: Validation | None = None,
    checked: bool = False,
) -> list[Member]:
    """Train one member per seed from ``template`` through joblib.

    Seeds are drawn before dispatch, so results do not depend on
    ``n_jobs``. With ``previous`` (a warm start), the first members are
    continued, not retrained, and keep their own seeds. ``sample_weight``
    weights the rows in every member's and vertex's loss. With ``memory``
    (the estimators' parameter), member nets and vertices stored by earlier
    fits are reused and new ones stored (:mod:`skspro._memory`). With
    ``validation``, held-out rows decide how long members and vertices train
    and how far each simplex grows (:mod:`skspro._validation`). ``checked``:
    :func:`check_fit` has already run for this fit.
    """
    if not checked:
        check_fit(
            template, X, y, classes, len(seeds), owner=owner, device=device, sample_weight=sample_weight
        )
    previous = list(previous or [])
    if len(previous) > len(seeds):
        raise ValueError(
            f"warm_start=True can add members but not remove them: the estimator has {len(previous)}, "
            f"n_members={len(seeds)}. Refit with warm_start=False."
        )
    seeds = [m.seed for m in previous] + [int(s) for s in seeds[len(previous) :]]
    inputs = {"X": X, "y": y, "sample_weight": sample_weight}
    cache = member_cache(memory, template, inputs | (validation.arrays() if validation else {}), classes)
    workers = effective_n_jobs(n_jobs)
    devices = resolve_devices(device, workers, len(seeds))
    n_threads = None if workers == 1 else max(1, torch.get_num_threads() // workers)
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(fit_member)(
            template,
            X,
            y,
            seed,
            spec,
            name=f"{owner} member {i + 1}/{len(seeds)}",
            index=i,
            device=devices[i],
            verbose=verbose,
            n_threads=n_threads,
            member=previous[i] if i < len(previous) else None,
            sample_weight=sample_weight,
            cache=cache,
            validation=validation,
        )
        for i, seed in enumerate(seeds)
    )
    bar = progress_bar(jobs, verbose=verbose, total=len(seeds), desc=f"{owner} members", unit="member")
    return list(bar)


def check_fit(
    template: NeuralNet,
    X: np.ndarray,
    y: np.ndarray,
    classes: np.ndarray,
    n_members: int,
    *,
    owner: str,
    device: str | None = None,
    sample_weight: np.ndarray | None = None,
) -> NeuralNet:
    """Refuse, before any training, what member training would refuse (and warn
    when every member would start from the same weights); returns the
    template initialised on the CPU."""
    if device is None:
        check_template_device(template)
    probe = clone(template).set_params(device="cpu")
    with seeded_torch(0):
        probe.initialize()
    check_output_size(probe, X, classes)
    check_copyable(probe)
    check_training_steps(probe, X, y)
    _warn_if_shared_initialisation(template, n_members, owner)
    if sample_weight is not None:
        check_sample_weight_support(probe)
    return probe


#: The decays that ``vertex_weight_decay="holdout"`` chooses between (a tie keeps the first).
HOLDOUT_DECAYS = ("auto", 0.0)


def probe_vertex_weight_decay(
    template: NeuralNet,
    data,
    held_out: Validation,
    seed: int,
    spec: SimplexSpec,
    classes: np.ndarray,
    *,
    owner: str,
    device: str | None = None,
    verbose: int = 0,
    memory=None,
) -> tuple[dict, float]:
    """Held-out NLL of a probe member's simplex for each of :data:`HOLDOUT_DECAYS`.

    One member is trained on ``data`` (a :class:`~skspro._inputs.FitData`, the
    rows kept for the probe) from ``seed`` as the estimator's members are
    (without early stopping), then a simplex of one vertex per decay is grown
    on it from the same vertex seed and sample points (one vertex whatever
    ``spec.n_vertices``, so the choice does not depend on it), and the
    prediction networks of each are scored on ``held_out``. Returns
    ``{decay: nll}``, for which the caller fits its members with the decay of
    the lowest (``vertex_weight_decay="holdout"``), and the training seconds
    of the probe's member and vertices (as ``member_fit_times_`` counts them:
    a cached network's are those of its training).
    """
    inputs = {"X": data.X, "y": data.y, "sample_weight": data.sample_weight}
    cache = member_cache(memory, template, inputs, classes)
    common = dict(
        name=f"{owner} decay probe",
        device=device,
        verbose=verbose,
        sample_weight=data.sample_weight,
        cache=cache,
    )
    spec = replace(spec, n_vertices=1)
    bare = fit_member(template, data.X, data.y, seed, replace(spec, n_vertices=0), **common)
    scores, seconds = {}, bare.fit_time
    for decay in HOLDOUT_DECAYS:
        grown = fit_member(
            template, data.X, data.y, seed, replace(spec, vertex_weight_decay=decay), member=bare, **common
        )
        scores[decay] = networks_nll(sampled_networks([grown]), held_out)
        seconds += sum(grown.vertex_times)
    return scores, seconds
