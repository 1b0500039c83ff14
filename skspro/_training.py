"""skorch integration: the net that trains one new vertex of a simplex.

A new vertex is trained with skorch's own loop (callbacks, history, device
handling) by wrapping the member's architecture in :class:`VertexModule`,
whose only trainable tensors are the new vertex's parameters, and training it
with :class:`VertexNet`, a ``NeuralNetClassifier`` whose loss subtracts the
volume regulariser.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from skorch import NeuralNet, NeuralNetClassifier
from skorch.callbacks import Callback, LRScheduler, PassthroughScoring
from skorch.dataset import Dataset, unpack_data
from skorch.utils import to_tensor
from torch.func import functional_call
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from ._weights import RowWeightsMixin, row_weights, split_inputs, weighted_inputs
from .simplex import (
    IncrementalLogVolume,
    StackedVertices,
    make_generator,
    norm_buffer_names,
    sample_simplex_weights,
)

__all__ = ["RecordStepTerms", "VertexModule", "VertexNet", "vertex_start"]

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

    All parameters are kept flat: the pool as one ``(k, n_params)`` matrix
    and the new vertex as one ``(n_params,)`` parameter, so combining
    vertices is one weighted sum whatever the number of tensors.

    Two ways of training step give the same numbers (tested):

    * :meth:`forward` + :meth:`log_volume` + autograd, the direct
      formulation (networks through :func:`torch.func.functional_call`,
      gradients through the weighted sum and the volume);
    * :meth:`train_step`, the fast path: each sampled network is written into
      a private copy of the architecture whose parameters are views of one
      flat buffer, a plain forward and backward fill one flat gradient, and
      the chain rule to the new vertex (``d theta / d v = w_new``) and the
      volume gradient (:meth:`IncrementalLogVolume.value_and_gradient`) are
      applied by hand. A step then costs about one base-network step plus a
      few operations over ``n_params``.

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
        dtypes = {p.dtype for p in frozen.params.values()}
        if len(dtypes) != 1:
            raise ValueError(
                f"Simplex training needs all parameters of one dtype, got {sorted(map(str, dtypes))}; "
                "cast the module first (e.g. module.float())."
            )
        # Not registered as a submodule: its parameters must not be trained
        # or moved by skorch; only its structure is used.
        object.__setattr__(self, "base", copy.deepcopy(base))
        self.names = list(frozen.params)
        self.shapes = [tuple(frozen.params[name].shape[1:]) for name in self.names]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.n_frozen = frozen.n_vertices
        self.register_buffer("pool", frozen.flat().detach().clone(), persistent=False)
        self.vertex = torch.nn.Parameter(
            torch.cat([start[name].detach().reshape(-1) for name in self.names]).to(self.pool)
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
        self.volumes = [IncrementalLogVolume(self.pool[face]) for face in self.faces]
        self.has_norm_layers = bool(norm_buffer_names(self.base))
        self._bind()

    def forward_buffers(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"buffer_{i}") for i, name in enumerate(self.buffer_names)}

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of a flat ``(..., n_params)`` tensor as named parameter tensors."""
        lead = flat.shape[:-1]
        return {
            name: part.view(*lead, *shape)
            for name, part, shape in zip(self.names, flat.split(self.sizes, dim=-1), self.shapes)
        }

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
        weights = weights.to(self.pool)
        flat = weights[:, :-1] @ self.pool + weights[:, -1:] * self.vertex
        return self.unflatten(flat)

    def _call(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor):
        return functional_call(self.base, (params, buffers), (x,))

    @staticmethod
    def _split_sizes(n_rows: int, n_parts: int) -> list[int]:
        """Balanced part sizes (as ``torch.tensor_split``): every network gets rows."""
        base, extra = divmod(n_rows, n_parts)
        return [base + (1 if i < extra else 0) for i in range(n_parts)]

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

    def _parts(
        self, n_rows: int, n_samples: int, row_weights: torch.Tensor | None = None
    ) -> list[tuple[int, int, float]]:
        """(start, stop, weight in the step's loss) of each network's rows.

        A part's weight is its share of the minibatch's mean loss: its rows'
        count, or the sum of their ``row_weights`` (weighted criteria), over
        the whole minibatch's.
        """
        if self.train_sampling == "full":
            return [(0, n_rows, 1.0 / n_samples)] * n_samples
        sizes = self._split_sizes(n_rows, n_samples)
        bounds = [0, *itertools.accumulate(sizes)]
        if row_weights is None:
            shares = [size / n_rows for size in sizes]
        else:
            sums = [float(part.sum()) for part in row_weights.double().split(sizes)]
            total = sum(sums)
            shares = [part / total if total > 0 else 0.0 for part in sums]
        return [(bounds[m], bounds[m + 1], shares[m]) for m in range(n_samples)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of ``M`` networks sampled afresh for this call.

        The outputs are concatenated in the order of :meth:`_parts` (so the
        criterion over them is the step's loss for mean-reduced criteria).
        This is the direct formulation; :meth:`train_step` is the fast one.
        """
        self.base.train(self.training)
        buffers = self.forward_buffers()
        n_samples = self._n_samples(x.shape[0])
        params = self.network_params(self.sample_weights(n_samples))
        outputs = []
        for m, (lo, hi, _) in enumerate(self._parts(x.shape[0], n_samples)):
            outputs.append(self._call({name: t[m] for name, t in params.items()}, buffers, x[lo:hi]))
        return torch.cat(outputs)

    def log_volume(self) -> torch.Tensor:
        """Mean log-volume of the simplexes with the new vertex (differentiable)."""
        return torch.stack([volume(self.vertex) for volume in self.volumes]).mean()

    def log_volume_and_gradient(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`log_volume` and its gradient in the new vertex, without autograd."""
        pairs = [volume.value_and_gradient(self.vertex.detach()) for volume in self.volumes]
        if len(pairs) == 1:
            return pairs[0]
        return (
            torch.stack([value for value, _ in pairs]).mean(),
            torch.stack([grad for _, grad in pairs]).mean(0),
        )

    def __getstate__(self) -> dict:
        # The binding (parameters as views of one buffer) does not survive a
        # copy or pickle; __setstate__ binds afresh.
        state = dict(self.__dict__)
        state["_flat"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._bind()

    def _apply(self, fn, recurse=True):
        # .to(), .cuda(), .double() move the vertex, pool and buffers: bind the
        # private network to where they are now.
        module = super()._apply(fn, recurse)
        self._bind()
        return module

    def _bind(self) -> None:
        """Make the private network's parameters views of one flat buffer (and
        their grads views of another), on the vertex's device and dtype, and
        its buffers this module's buffers. Done at initialisation and after
        every move or copy, never during training."""
        self.base.to(self.vertex.device)
        theta = torch.zeros_like(self.vertex, requires_grad=False)
        grad = torch.zeros_like(theta)
        params = dict(self.base.named_parameters())
        for (name, value), g in zip(self.unflatten(theta).items(), self.unflatten(grad).values()):
            params[name].data = value
            # Every parameter is a coordinate of the vertex, as in the
            # direct formulation (frozen ones in the user's module too).
            params[name].requires_grad_(True)
            params[name].grad = g  # backward accumulates into it in place
        for name, buffer in self.forward_buffers().items():
            owner, _, attr = name.rpartition(".")
            setattr(self.base.get_submodule(owner), attr, buffer)
        self._flat = (theta, grad)

    def _write_network(self, theta: torch.Tensor, weights: torch.Tensor) -> float:
        """``theta = weights @ [pool; vertex]`` in place; returns the new vertex's weight."""
        w = weights.tolist()  # host floats: no device transfer, no sync
        theta.zero_()
        for i, wi in enumerate(w[:-1]):
            if wi:
                theta.add_(self.pool[i], alpha=wi)
        theta.add_(self.vertex.detach(), alpha=w[-1])
        return w[-1]

    def train_step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        criterion: Callable[..., torch.Tensor],
        reg: float,
        row_weights: torch.Tensor | None = None,
        sample_weight: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One step's loss and the new vertex's gradient (added to ``vertex.grad``).

        The same numbers as ``criterion(self(x), y') - reg * self.log_volume()``
        followed by ``backward()`` (``y'`` the targets in the order of the
        outputs), computed network by network: ``criterion(out, y_part)``
        (``criterion(out, y_part, sample_weight_part)`` with
        ``sample_weight``) is the mean loss of a part of the minibatch, and
        ``row_weights`` (``s_i c[y_i]`` of :mod:`skspro._weights`, None when
        every row counts the same) weights the parts as that mean over all
        rows does.

        Returns
        -------
        dict
            ``loss`` (the regularised loss), ``ce_loss``, ``log_volume``
            (detached scalars) and ``y_pred`` (the outputs, detached).
        """
        theta, grad = self._flat
        self.base.train(True)
        n_samples = self._n_samples(x.shape[0])
        weights = self.sample_weights(n_samples)
        vertex_grad = torch.zeros_like(theta)
        data_loss = torch.zeros((), dtype=torch.float64, device=theta.device)
        outputs = []
        for m, (lo, hi, share) in enumerate(self._parts(x.shape[0], n_samples, row_weights)):
            with torch.no_grad():
                w_new = self._write_network(theta, weights[m])
            grad.zero_()
            out = self.base(x[lo:hi])
            if share:  # rows of zero weight add nothing (and their mean is 0 / 0)
                part = () if sample_weight is None else (sample_weight[lo:hi],)
                loss = criterion(out, y[lo:hi], *part)
                loss.backward()
                vertex_grad.add_(grad, alpha=w_new * share)
                data_loss += share * loss.detach()
            outputs.append(out.detach())
        log_vol, volume_grad = self.log_volume_and_gradient()
        if reg:
            vertex_grad.add_(volume_grad, alpha=-reg)
        if self.vertex.grad is None:
            self.vertex.grad = vertex_grad
        else:
            self.vertex.grad.add_(vertex_grad)
        total = data_loss - reg * log_vol if reg else data_loss
        return {
            "loss": total.to(theta.dtype),
            "ce_loss": data_loss,
            "log_volume": log_vol,
            "y_pred": torch.cat(outputs),
        }

    def new_vertex(self) -> dict[str, torch.Tensor]:
        """The trained new vertex as a name -> tensor dict (detached copies)."""
        return {name: t.clone() for name, t in self.unflatten(self.vertex.detach()).items()}


class _Rows(torch.utils.data.Dataset):
    """Rows of arrays (``X`` an array or a dict of arrays, ``y`` an array),
    indexed by a whole minibatch at once."""

    def __init__(self, X, y) -> None:
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        X = {key: value[rows] for key, value in self.X.items()} if isinstance(self.X, dict) else self.X[rows]
        return X, self.y[rows]


def _plain_arrays(dataset) -> bool:
    X = dataset.X
    arrays = list(X.values()) if isinstance(X, dict) else [X]
    return isinstance(dataset.y, np.ndarray) and all(isinstance(a, np.ndarray) for a in arrays)


class VertexNet(RowWeightsMixin, NeuralNetClassifier):
    """A ``NeuralNetClassifier`` training a :class:`VertexModule`.

    Its loss is the criterion on the sampled networks' outputs minus
    ``reg * reg_scale * log_volume``; the batch-level cross-entropy and
    log-volume are kept in the history (``ce_loss``, ``log_volume``) and
    averaged per epoch. Fitted on :func:`~skspro._weights.weighted_inputs`,
    rows are weighted in the loss.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`skorch.NeuralNetClassifier`.
    reg : float, default=0.0
        Strength of the volume regulariser (dimensionless, see ``reg_scale``).
    reg_scale : float, default=1.0
        Multiplies ``reg``; the estimators pass the squared norm of the mode so
        that one ``reg`` gives a similar relative simplex size across model
        sizes (docs/method.rst).
    fast : bool, default=True
        Use :meth:`VertexModule.train_step` (same numbers, about one
        base-network step of cost). ``False`` runs skorch's own step on the
        direct autograd formulation; kept as the reference the fast path is
        tested against, and used for inputs that are not plain tensors.
    """

    def __init__(self, *args, reg: float = 0.0, reg_scale: float = 1.0, fast: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reg = reg
        self.reg_scale = reg_scale
        self.fast = fast

    def get_iterator(self, dataset, training=False):
        """skorch's iterator, except that a plain training loader fetches
        whole minibatches instead of one row at a time.

        With skorch's ``Dataset`` and a ``DataLoader`` configured by
        ``batch_size``, ``shuffle`` and ``drop_last`` only, the batches are
        those of the per-row loader (the same sampler drawing from the same
        random stream, each minibatch indexed at once), so training is
        bit-identical; per-row fetching was a fifth of a small MLP's vertex
        epoch. Anything else (a sampler, workers, a collate function, another
        dataset) goes through skorch unchanged.
        """
        kwargs = self.get_params_for("iterator_train") if training else {}
        plain = (
            training
            and type(dataset) is Dataset
            and self.iterator_train is DataLoader
            and set(kwargs) <= {"batch_size", "shuffle", "drop_last"}
            and _plain_arrays(dataset)
        )
        if not plain:
            return super().get_iterator(dataset, training=training)
        batch_size = kwargs.get("batch_size", self.batch_size)
        batch_size = len(dataset) if batch_size == -1 else batch_size
        order = RandomSampler(dataset) if kwargs.get("shuffle", False) else SequentialSampler(dataset)
        batches = BatchSampler(order, batch_size, kwargs.get("drop_last", False))
        return DataLoader(_Rows(dataset.X, dataset.y), batch_size=None, sampler=batches)

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        callbacks += [
            ("step_terms", RecordStepTerms()),
            ("ce_loss", PassthroughScoring("ce_loss", on_train=True)),
            ("log_volume", PassthroughScoring("log_volume", lower_is_better=False, on_train=True)),
        ]
        return callbacks

    def train_step_single(self, batch, **fit_params):
        """One step's loss and gradient; the step dict also carries the
        unregularised ``ce_loss`` and the ``log_volume`` (for
        :class:`RecordStepTerms`)."""
        Xi, yi = unpack_data(batch)
        self._set_training(True)
        inputs, weight = split_inputs(Xi)
        if self._fast_step_is_exact(inputs, fit_params):
            x = to_tensor(inputs, device=self.device)
            y = to_tensor(yi, device=self.device)
            weight = None if weight is None else to_tensor(weight, device=self.device)

            def criterion(y_pred, y_true, part_weight=None):
                part = weighted_inputs(None, part_weight)
                return RowWeightsMixin.get_loss(self, y_pred, y_true, X=part, training=True)

            rows = row_weights(self.criterion_, y, weight)
            return self.module_.train_step(x, y, criterion, self.reg * self.reg_scale, rows, weight)
        # The direct formulation: skorch's own step, with the volume term.
        y_pred = self.infer(Xi, **fit_params)
        ce_loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        log_vol = self.module_.log_volume()
        loss = ce_loss - (self.reg * self.reg_scale) * log_vol.to(ce_loss.dtype) if self.reg else ce_loss
        loss.backward()
        return {"loss": loss, "y_pred": y_pred, "ce_loss": ce_loss.detach(), "log_volume": log_vol.detach()}

    def _fast_step_is_exact(self, Xi, fit_params) -> bool:
        """Whether :meth:`VertexModule.train_step` gives this step's numbers.

        It needs plain tensor inputs. With one network per step, or every
        network on the whole minibatch, it is exact for any criterion; when
        the minibatch is split over several networks it weights the parts by
        their share of the mean loss (rows, or the rows' sample and class
        weights), which is the criterion over all rows for a mean over rows
        (cross-entropy / NLL, weighted or not).
        """
        if not self.fast or fit_params or not isinstance(Xi, torch.Tensor | np.ndarray):
            return False
        module = self.module_
        if module.train_sampling == "full" or module.n_train_samples == 1:
            return True
        criterion = self.criterion_
        return isinstance(criterion, torch.nn.CrossEntropyLoss | torch.nn.NLLLoss) and (
            criterion.reduction == "mean"
        )

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The criterion on the sampled networks' outputs (without the volume term)."""
        repeats = y_pred.shape[0] // y_true.shape[0]
        if repeats > 1:  # train_sampling="full": M evaluations of the batch
            y_true = to_tensor(y_true, device=y_pred.device).repeat(repeats)
            inputs, weight = split_inputs(X)
            if weight is not None:
                X = weighted_inputs(inputs, to_tensor(weight, device=y_pred.device).repeat(repeats))
        return super().get_loss(y_pred, y_true, X=X, training=training)


class RecordStepTerms(Callback):
    """Record each training step's ``ce_loss`` and ``log_volume`` (from the step
    dict) in the batch history; :class:`~skorch.callbacks.PassthroughScoring`
    averages them per epoch."""

    def on_batch_end(self, net, batch=None, training=None, ce_loss=None, log_volume=None, **kwargs) -> None:
        if training and ce_loss is not None:
            net.history.record_batch("ce_loss", ce_loss.item())
            net.history.record_batch("log_volume", log_volume.item())


#: The share of the new vertex that ``vertex_weight_decay="auto"`` removes per
#: epoch at the start learning rate on a fully connected network, whatever the
#: number of steps per epoch (``benchmarks/results/recipe-mlp3.md``,
#: ``recipe-mlp4.md``, ``recipe-mlp5.md``).
AUTO_DECAY_PER_EPOCH = 0.03

#: How ``"auto"`` is computed, with ``AUTO_DECAY_PER_EPOCH`` part of the memory
#: cache's vertex keys: change it with the rule (e.g. how steps are counted).
AUTO_DECAY_RULE = "per epoch at the members' start learning rate, steps counted by the training loader"

_NORMS = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)


def is_fully_connected(module: torch.nn.Module) -> bool:
    """Whether every layer of ``module`` that holds parameters is a ``Linear``
    or a normalisation layer (and there is at least one ``Linear``)."""
    layers = [m for m in module.modules() if next(m.parameters(recurse=False), None) is not None]
    return any(isinstance(m, torch.nn.Linear) for m in layers) and all(
        isinstance(m, (torch.nn.Linear, *_NORMS)) for m in layers
    )


def check_vertex_weight_decay(value: float | str, lr: float) -> None:
    """Refuse a decay that flips or zeroes the vertex at every step (checked before any
    training; ``"auto"`` never does, nor ``"holdout"``, which chooses between it and ``0``)."""
    if not isinstance(value, str) and lr * float(value) >= 1.0:
        raise ValueError(
            f"vertex_weight_decay={value!r} with a vertex learning rate of {lr:g} multiplies the vertex "
            f"by 1 - lr * decay = {1.0 - lr * float(value):g} <= 0 at every step; the decay is per unit of "
            "learning rate (as in torch.optim.AdamW): choose a value below 1 / lr."
        )


def resolve_vertex_weight_decay(
    value: float | str, module: torch.nn.Module, lr: float, *, n_steps: int, member_lr: float | None = None
) -> float:
    """The decoupled weight decay that ``vertex_weight_decay=value`` stands for.

    ``"auto"``: ``AUTO_DECAY_PER_EPOCH / (member_lr * n_steps)`` for a fully
    connected ``module`` (:func:`is_fully_connected`), ``n_steps`` being the
    training steps per epoch and ``member_lr`` the members' learning rate
    (default ``lr``): at the members' learning rate an epoch shrinks the
    vertex by about 3 %, on 300 rows as on 30 000, and a smaller vertex
    learning rate decays it proportionally less, as with AdamW; one step never
    removes more than 3 % (a vertex learning rate above ``n_steps`` times the
    members'). Else ``0``.
    The split is measured (``benchmarks/results/recipe-*.md``): on the five
    MLP tasks of the suite, whose members over-fit, the decay lowered ESPRO's
    validation NLL on every one; on the three CNNs it raised it on every one.
    """
    if value != "auto":
        decay = float(value)
    elif is_fully_connected(module):
        per_epoch = AUTO_DECAY_PER_EPOCH / ((member_lr or lr) * max(1, n_steps))
        decay = min(per_epoch, AUTO_DECAY_PER_EPOCH / lr)  # never more than 3 % in one step
    else:
        decay = 0.0
    check_vertex_weight_decay(value, lr)
    return decay


def training_steps(net: NeuralNet, X, y) -> int:
    """Training steps per epoch of ``net`` on ``(X, y)``, as skorch counts them:
    the length of its training iterator (``batch_size``, ``iterator_train__*``
    such as ``drop_last`` or a sampler). A sampler without ``__len__`` raises
    ``TypeError``."""
    return len(net.get_iterator(net.get_dataset(X, y), training=True))


class VertexWeightDecay(Callback):
    """Decoupled weight decay of the trained vertex (as in ``torch.optim.AdamW``).

    After every training step the vertex is multiplied by
    ``1 - lr * weight_decay_``, ``lr`` being the step's learning rate (so the
    decay follows the schedule). It shrinks the new vertex towards zero, the
    same pull that weight decay puts on a network's weights, whatever the
    optimizer; the frozen vertices are not touched.

    Parameters
    ----------
    value : float or "auto"
        The estimator's ``vertex_weight_decay``, resolved when training
        begins (:func:`resolve_vertex_weight_decay`) from the network's module
        and start learning rate and the number of batches skorch's training
        iterator gives per epoch (``batch_size``, ``iterator_train__*`` such
        as ``drop_last`` or a sampler, all counted as skorch counts them).
    member_lr : float, optional
        The members' learning rate, which ``"auto"`` is calibrated to
        (default: the vertex's).
    """

    def __init__(self, value: float | str, member_lr: float | None = None) -> None:
        self.value = value
        self.member_lr = member_lr

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        self.weight_decay_ = resolve_vertex_weight_decay(
            self.value, net.module_.base, net.lr, n_steps=training_steps(net, X, y), member_lr=self.member_lr
        )

    def on_epoch_end(self, net, **kwargs) -> None:
        # The value "auto" stood for, in the vertex's history (vertex_histories_).
        net.history.record("vertex_weight_decay", self.weight_decay_)

    def on_batch_end(self, net, training=False, **kwargs) -> None:
        if not training or not self.weight_decay_:
            return
        lr = net.optimizer_.param_groups[0]["lr"]
        with torch.no_grad():
            net.module_.vertex.mul_(1.0 - lr * self.weight_decay_)


def cosine_schedule(n_epochs: int) -> LRScheduler:
    """Cosine annealing of the learning rate over ``n_epochs`` epochs."""
    return LRScheduler(policy="CosineAnnealingLR", T_max=max(1, n_epochs))
