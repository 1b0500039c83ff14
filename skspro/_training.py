"""skorch integration: the net that trains one new vertex of a simplex.

A new vertex is trained with skorch's own loop (callbacks, history, device
handling) by wrapping the member's architecture in :class:`VertexModule`,
whose only trainable tensors are the new vertex's parameters, and training it
with :class:`VertexNet`, a ``NeuralNetClassifier`` whose loss subtracts the
volume regulariser.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import LRScheduler, PassthroughScoring
from torch.func import functional_call, vmap

from .simplex import (
    IncrementalLogVolume,
    StackedVertices,
    make_generator,
    norm_buffer_names,
    sample_simplex_weights,
)

__all__ = ["VertexModule", "VertexNet", "vertex_start"]

#: Ways a minibatch is spread over the ``M`` sampled networks of a step.
TRAIN_SAMPLING = ("split", "full")


def vertex_start(
    simplex: StackedVertices, generator: torch.Generator, noise: float = 0.01
) -> dict[str, torch.Tensor]:
    """Where a new vertex starts: the centroid plus small noise.

    The centroid of the existing vertices lies in their affine hull, so the
    new simplex would have volume 0 (log-volume ``-inf``, NaN gradient).
    Each tensor is moved by Gaussian noise of ``noise`` times that tensor's
    standard deviation (the whole vertex's where a tensor has one element or
    no spread).
    """
    centroid = simplex.centroid()
    flat = torch.cat([c.reshape(-1) for c in centroid.values()]).float()
    fallback = float(flat.std()) if flat.numel() > 1 else 1.0
    fallback = fallback if fallback > 0 else 1.0
    start = {}
    for name, c in centroid.items():
        spread = float(c.float().std()) if c.numel() > 1 else 0.0
        if not spread > 0:  # also catches NaN
            spread = fallback
        eps = torch.randn(c.shape, generator=generator, dtype=torch.float32).to(c)
        start[name] = c + noise * spread * eps
    return start


class VertexModule(torch.nn.Module):
    """Networks sampled from simplexes that share one new, trainable vertex.

    ESPRO grows one simplex: the frozen vertices plus the new one. SPRO's
    mode connection grows a complex: every simplex is one mode, the frozen
    connectors and the new connector. Both are a pool of frozen vertices and
    a list of *faces* (indices into the pool); each face plus the new vertex
    is one simplex of the complex.

    Parameters
    ----------
    base : torch.nn.Module
        The architecture. A private copy is kept; the caller's module is not
        modified, and its own parameters are never used.
    frozen : StackedVertices
        The pool of existing vertices; they stay fixed.
    start : dict of str to Tensor
        Initial value of the new vertex.
    buffers : dict of str to Tensor
        Buffers for the forward pass (copied: train-mode BatchNorm updates
        its running statistics in place, and those of the member must not
        change).
    n_train_samples : int
        Number ``M`` of networks sampled per minibatch.
    train_sampling : {"split", "full"}
        ``"split"``: the minibatch is cut into ``M`` parts, each evaluated by
        its own sampled network (an unbiased estimate of the same expected
        loss at about the cost of one network). ``"full"``: every sampled
        network sees the whole minibatch (the published recipe, ``M`` times
        the cost); the output then stacks the ``M`` evaluations.
    seed : int
        Seeds the generator of the sampled barycentric weights.
    faces : sequence of sequence of int, optional
        The faces of the frozen pool that the new vertex completes to
        simplexes. Default: one face holding the whole pool. Each training
        sample picks a face uniformly at random, then a uniform point of its
        simplex. The volume term is the mean log-volume over the simplexes.
    """

    def __init__(
        self,
        base: torch.nn.Module,
        frozen: StackedVertices,
        start: Mapping[str, torch.Tensor],
        buffers: Mapping[str, torch.Tensor],
        n_train_samples: int,
        train_sampling: str,
        seed: int,
        faces: Sequence[Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if train_sampling not in TRAIN_SAMPLING:
            raise ValueError(f"train_sampling must be one of {TRAIN_SAMPLING}, got {train_sampling!r}.")
        # Not registered as a submodule: its parameters must not be trained
        # or moved by skorch; only its structure is used.
        object.__setattr__(self, "base", copy.deepcopy(base))
        self.names = list(frozen.params)
        self.n_frozen = frozen.n_vertices
        for i, name in enumerate(self.names):
            self.register_buffer(f"frozen_{i}", frozen.params[name].detach(), persistent=False)
        self.vertex = torch.nn.ParameterList(
            [torch.nn.Parameter(start[name].detach().clone()) for name in self.names]
        )
        self.buffer_names = list(buffers)
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"buffer_{i}", buffers[name].detach().clone(), persistent=False)
        self.n_train_samples = n_train_samples
        self.train_sampling = train_sampling
        self.generator = make_generator(seed)
        self.faces = [list(range(frozen.n_vertices))] if faces is None else [list(f) for f in faces]
        if not self.faces or any(not f or min(f) < 0 or max(f) >= frozen.n_vertices for f in self.faces):
            raise ValueError(
                f"faces must be non-empty lists of indices below {frozen.n_vertices}, got {faces}."
            )
        pool = frozen.flat()
        self.volumes = [IncrementalLogVolume(pool[face]) for face in self.faces]
        # Train-mode normalisation layers update running statistics in place,
        # which vmap refuses; such modules evaluate the M networks in a loop.
        self.has_norm_layers = bool(norm_buffer_names(self.base))
        self.vectorize = not self.has_norm_layers

    def _frozen(self, i: int) -> torch.Tensor:
        return getattr(self, f"frozen_{i}")

    def forward_buffers(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"buffer_{i}") for i, name in enumerate(self.buffer_names)}

    def sample_weights(self, n_samples: int) -> torch.Tensor:
        """Barycentric weights over (pool, new vertex), shape (n_samples, n_pool + 1).

        Each row picks a face uniformly and a uniform point of its simplex;
        weights outside that face are zero.
        """
        weights = torch.zeros((n_samples, self.n_frozen + 1))
        if len(self.faces) == 1:
            choice = torch.zeros(n_samples, dtype=torch.long)
        else:
            choice = torch.randint(len(self.faces), (n_samples,), generator=self.generator)
        for f, face in enumerate(self.faces):
            rows = (choice == f).nonzero().flatten()
            if len(rows):
                point = sample_simplex_weights(len(face) + 1, len(rows), self.generator)
                weights[rows[:, None], torch.tensor(face + [self.n_frozen])[None, :]] = point
        return weights

    def network_params(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stacked parameters (M, ...) of the networks at barycentric ``weights`` (M, k + 1)."""
        weights = weights.to(self._frozen(0))
        combined = {}
        for i, name in enumerate(self.names):
            frozen_part = torch.tensordot(weights[:, :-1], self._frozen(i), dims=1)
            new_part = weights[:, -1].reshape((-1,) + (1,) * self.vertex[i].dim()) * self.vertex[i]
            combined[name] = frozen_part + new_part
        return combined

    def _call(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor):
        return functional_call(self.base, (params, buffers), (x,))

    @staticmethod
    def _split_sizes(n_rows: int, n_parts: int) -> list[int]:
        """Balanced part sizes (as ``torch.tensor_split``): every network gets rows."""
        base, extra = divmod(n_rows, n_parts)
        return [base + (1 if i < extra else 0) for i in range(n_parts)]

    def _forward_vmap(self, params, buffers, x: torch.Tensor) -> torch.Tensor:
        n_samples = next(iter(params.values())).shape[0]
        if self.train_sampling == "full":
            out = vmap(self._call, in_dims=(0, None, None), randomness="different")(params, buffers, x)
            return out.reshape(-1, *out.shape[2:])
        # split: the parts of the loop path, each padded to the largest by
        # repeating its first row; padded outputs are dropped.
        sizes = self._split_sizes(x.shape[0], n_samples)
        width = max(sizes)
        starts = torch.tensor([0, *sizes[:-1]]).cumsum(0)
        offsets = torch.arange(width)
        index = starts[:, None] + torch.minimum(offsets[None, :], torch.tensor(sizes)[:, None] - 1)
        out = vmap(self._call, in_dims=(0, None, 0), randomness="different")(
            params, buffers, x[index.to(x.device)]
        )
        valid = (offsets[None, :] < torch.tensor(sizes)[:, None]).to(out.device)
        return out[valid]

    def _forward_loop(self, params, buffers, x: torch.Tensor) -> torch.Tensor:
        n_samples = next(iter(params.values())).shape[0]
        networks = [{name: t[m] for name, t in params.items()} for m in range(n_samples)]
        if self.train_sampling == "split":
            parts = x.split(self._split_sizes(x.shape[0], n_samples))
            return torch.cat([self._call(p, buffers, xp) for p, xp in zip(networks, parts)])
        return torch.cat([self._call(p, buffers, x) for p in networks])

    def _n_samples(self, n_rows: int) -> int:
        """Networks for a minibatch of ``n_rows`` rows.

        In "split" mode each network needs rows of its own, and train-mode
        normalisation layers need at least two per network (batch
        statistics), so small minibatches use fewer networks.
        """
        if self.train_sampling == "full":
            return self.n_train_samples
        min_rows = 2 if self.has_norm_layers else 1
        return max(1, min(self.n_train_samples, n_rows // min_rows))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.base.train(self.training)
        buffers = self.forward_buffers()
        if not self.training:  # the centroid of the first simplex, e.g. for skorch's predict
            face = self.faces[0] + [self.n_frozen]
            weights = torch.zeros((1, self.n_frozen + 1))
            weights[0, face] = 1.0 / len(face)
            params = {name: t[0] for name, t in self.network_params(weights).items()}
            return self._call(params, buffers, x)
        n_samples = self._n_samples(x.shape[0])
        params = self.network_params(self.sample_weights(n_samples))
        if self.vectorize and n_samples > 1:
            try:
                return self._forward_vmap(params, buffers, x)
            except RuntimeError:
                # Some modules cannot be vmapped (in-place updates of shared
                # state, custom autograd functions): one network at a time.
                self.vectorize = False
        return self._forward_loop(params, buffers, x)

    def flat_vertex(self) -> torch.Tensor:
        """The new vertex flattened in the order of the stacked parameters."""
        return torch.cat([p.reshape(-1) for p in self.vertex])

    def log_volume(self) -> torch.Tensor:
        """Mean log-volume of the simplexes with the new vertex (differentiable)."""
        flat = self.flat_vertex()
        return torch.stack([volume(flat) for volume in self.volumes]).mean()

    def new_vertex(self) -> dict[str, torch.Tensor]:
        """The trained new vertex as a name -> tensor dict (detached copies)."""
        return {name: p.detach().clone() for name, p in zip(self.names, self.vertex)}


class VertexNet(NeuralNetClassifier):
    """A ``NeuralNetClassifier`` training a :class:`VertexModule`.

    Its loss is the criterion on the sampled networks' outputs minus
    ``reg * reg_scale * log_volume``; the batch-level cross-entropy and
    log-volume are kept in the history (``ce_loss``, ``log_volume``) and
    averaged per epoch.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`skorch.NeuralNetClassifier`.
    reg : float, default=0.0
        Strength of the volume regulariser (dimensionless, see ``reg_scale``).
    reg_scale : float, default=1.0
        Multiplies ``reg``; the estimators pass the squared norm of the mode so
        that one ``reg`` gives a similar relative simplex size across model
        sizes (DESIGN.md, "Volume gradient").
    """

    def __init__(self, *args, reg: float = 0.0, reg_scale: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reg = reg
        self.reg_scale = reg_scale

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        callbacks += [
            ("ce_loss", PassthroughScoring("ce_loss", on_train=True)),
            ("log_volume", PassthroughScoring("log_volume", lower_is_better=False, on_train=True)),
        ]
        return callbacks

    def get_loss(self, y_pred, y_true, X=None, training=False):
        repeats = y_pred.shape[0] // y_true.shape[0]
        if repeats > 1:  # train_sampling="full": M evaluations of the batch
            y_true = y_true.repeat(repeats)
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if not training:
            return loss
        log_vol = self.module_.log_volume()
        self.history.record_batch("ce_loss", loss.item())
        self.history.record_batch("log_volume", log_vol.item())
        if self.reg:
            loss = loss - (self.reg * self.reg_scale) * log_vol.to(loss.dtype)
        return loss


def cosine_schedule(n_epochs: int) -> LRScheduler:
    """Cosine annealing of the learning rate over ``n_epochs`` epochs."""
    return LRScheduler(policy="CosineAnnealingLR", T_max=max(1, n_epochs))
