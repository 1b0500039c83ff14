"""SPROConnector: simplicial complexes of low loss that connect modes."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet

from ._base import NetworksPredictorMixin
from ._docstrings import fill_doc
from ._file_checks import CONNECTOR_CURVES, CONNECTOR_MODE_ARRAYS
from ._inputs import (
    TemplateMixin,
    check_output_size,
    draw_seeds,
    member_template,
    validate_fit_data,
    validate_predict_data,
)
from ._members import (
    Member,
    SimplexSpec,
    fit_members,
    networks_of,
    norm_statistics,
    train_vertex,
    vertex_seed,
)
from ._progress import progress_bar
from ._safety import atomic_fit
from ._weights import class_weights, validate_sample_weight
from .simplex import (
    NetworkGroup,
    SampledNetworks,
    StackedVertices,
    make_generator,
    module_buffers,
    module_params,
    norm_buffer_names,
    sample_simplex_weights,
)

__all__ = ["SPROConnector"]


@dataclass(frozen=True)
class _Complex:
    """The grown state of a complex: all vertices (modes first) and the
    curves recorded per connector. Each method returns a new one."""

    modes: tuple[NeuralNet, ...]
    vertices: StackedVertices
    seed: int
    log_volumes: tuple[float, ...] = ()
    heights: tuple[float, ...] = ()
    start_heights: tuple[float, ...] = ()
    histories: tuple = ()

    @property
    def n_modes(self) -> int:
        return len(self.modes)

    @property
    def n_connectors(self) -> int:
        return len(self.log_volumes)

    def faces(self, n_connectors: int | None = None) -> list[list[int]]:
        """Each mode with the first ``n_connectors`` connectors (default: all)."""
        n, m = self.n_modes, self.n_connectors if n_connectors is None else n_connectors
        return [[i, *range(n, n + m)] for i in range(n)]

    def mode_scale(self) -> float:
        """Mean distance between modes (the norm of the mode when there is one)."""
        flat = self.vertices.flat()[: self.n_modes].to(torch.float64)
        spread = float(torch.pdist(flat).mean()) if len(flat) > 1 else 0.0
        # Identical modes have no spread: fall back to the weights' norm.
        return spread if spread > 0 else max(float(flat[0].norm()), 1e-12)

    def reg_scale(self) -> float:
        """Mean squared norm of the modes."""
        modes = self.vertices.flat()[: self.n_modes].to(torch.float64)
        return float((modes * modes).sum(1).mean())


@fill_doc
class SPROConnector(TemplateMixin, NetworksPredictorMixin, ClassifierMixin, BaseEstimator):
    """Connect independently trained networks by a simplicial complex of low loss.

    Given modes ``w_0 .. w_n`` (trained here, or networks you already have),
    SPRO adds *connecting points* ``c_0 .. c_m`` shared by every simplex
    ``S(w_i, c_0, .., c_m)``, one at a time. Each new connector starts at the
    centroid of all current vertices (plus small noise) and is the only
    trainable tensor; modes and earlier connectors stay frozen. Its loss per
    minibatch is the cross-entropy of networks sampled from the complex (a
    simplex chosen at random, then a uniform point in it) minus
    ``reg * ||w||^2`` times the mean log-volume of the simplexes. The volume
    of the complex after each connector is recorded: once a new connector
    adds no new low-loss direction, its height above the older vertices, and
    with it the volume, collapses (the paper's dimensionality experiment, see
    :meth:`grow_until_collapse`).

    Parameters
    ----------
    estimator : skorch.NeuralNetClassifier, FrozenEstimator, list or None, default=None
        Where the modes come from.

        * ``None`` or an unfitted skorch template: ``n_modes`` networks are
          trained from it, as in :class:`DeepEnsembleClassifier` (with the same
          ``random_state`` the modes are that ensemble's members).
        * ``FrozenEstimator(fitted)``, with ``fitted`` a fitted
          :class:`DeepEnsembleClassifier` or :class:`ESPROClassifier` (its
          members are the modes, its ``classes_`` are kept) or a fitted skorch
          net (one mode).
        * a list of ``FrozenEstimator(fitted_skorch_net)``: one mode each.

        Frozen modes are never refitted or modified; ``n_modes`` is ignored.
        All modes must share one architecture.
    n_modes : int, default=3
        Networks trained when ``estimator`` is not frozen.
    n_connectors : int, default=2
        Connecting points added (``m + 1``).
    connector_epochs : int, default=20
        Epochs of training for each connector (cosine learning-rate schedule).
    connector_lr : float, default=None
        Learning rate of connector training; ``None`` uses the modes' ``lr``.
    reg : float, default=1e-4
        Strength of the volume regulariser, relative to the mean squared norm
        of the modes (see :class:`ESPROClassifier`).
    n_train_samples : int, default=5
        Networks sampled from the complex per training step.
    train_sampling : {"split", "full"}, default="split"
        See :class:`ESPROClassifier`.
    n_samples : int, default=10
        Networks drawn from each simplex for prediction; ``n_networks_ =
        n_modes * n_samples`` (or ``n_modes`` with no connector).
    {class_weight}
    random_state : int, RandomState instance or None, default=None
        One seed per mode and one for the connectors.
    n_jobs : int, default=None
        Modes trained in parallel through joblib.
    {device}
    {verbose}
    {memory}

    Attributes
    ----------
    estimator_ : skorch.NeuralNetClassifier
        The validated, unfitted template of the modes: the one trained modes
        were cloned from (with ``class_weight`` as the criterion's weights),
        or an unfitted clone of the first frozen mode.
    estimators_ : list of skorch.NeuralNetClassifier
        The modes (the user's own objects when frozen modes were given).
    vertices_ : skspro.simplex.StackedVertices
        All vertices: the modes first, then the connectors in order.
    simplices_ : list of tuple of int
        Each simplex of the complex as indices into ``vertices_``.
    log_volumes_ : ndarray of shape (n_connectors,)
        Log of the complex's volume (the sum of its simplexes' volumes) after
        each added connector.
    volumes_ : ndarray of shape (n_connectors,)
        ``exp(log_volumes_)`` (may under/overflow; use the logs).
    relative_heights_ : ndarray of shape (n_connectors,)
        Mean height of each new connector above the older vertices of each
        simplex, divided by the mean distance between modes (by the norm of
        the mode when there is one). Near 0: the connector added no new
        direction.
    start_relative_heights_ : ndarray of shape (n_connectors,)
        The same for each connector where its training started (centroid
        plus small noise): the baseline that ``relative_heights_`` grew from.
    n_connectors_ : int
        Connectors in the complex (``n_connectors``, or more after
        :meth:`grow_until_collapse`).
    collapse_at_ : int or None
        Set by :meth:`grow_until_collapse`.
    connector_histories_ : list of skorch.History
        Training history of each connector (``train_loss``, ``ce_loss``,
        ``log_volume``, ``dur`` per epoch).
    mode_train_loss_, mode_train_accuracy_ : ndarray of shape (n_modes,)
        Training loss and accuracy of each mode.
    simplex_train_loss_, simplex_train_accuracy_ : ndarray of shape (n_modes,)
        Mean training loss and accuracy of the networks sampled from each
        simplex (the ones used for prediction).
    sample_weights_ : ndarray of shape (`n_networks_`, n_vertices)
        Barycentric coordinates over ``vertices_`` of the prediction networks.
    networks_ : skspro.simplex.SampledNetworks
        The prediction networks (``n_samples`` per simplex, each with its own
        BatchNorm statistics), evaluated by ``predict_proba``.
    n_networks_ : int
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
    fit_time_ : float

    See Also
    --------
    ESPROClassifier : One simplex per mode, no shared connectors.

    References
    ----------
    G. W. Benton, W. J. Maddox, S. Lotfi, A. G. Wilson. Loss Surface
    Simplexes for Mode Connecting Volumes and Fast Ensembling. ICML 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skspro import DeepEnsembleClassifier, SPROConnector, default_estimator
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> ensemble = DeepEnsembleClassifier(default_estimator().set_params(max_epochs=5),
    ...                                   n_members=2, random_state=0).fit(X, y)
    >>> complex_ = SPROConnector(FrozenEstimator(ensemble), n_connectors=1, connector_epochs=2,
    ...                          n_samples=3, random_state=0).fit(X, y)
    >>> complex_.simplices_
    [(0, 2), (1, 2)]
    >>> complex_.predict_proba(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        "estimator": [NeuralNet, FrozenEstimator, list, None],
        "n_modes": [Interval(Integral, 1, None, closed="left")],
        "n_connectors": [Interval(Integral, 0, None, closed="left")],
        "connector_epochs": [Interval(Integral, 1, None, closed="left")],
        "connector_lr": [Interval(Real, 0, None, closed="neither"), None],
        "reg": [Interval(Real, 0, None, closed="left")],
        "n_train_samples": [Interval(Integral, 1, None, closed="left")],
        "train_sampling": [StrOptions({"split", "full"})],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "device": [str, None],
        "verbose": ["verbose"],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
    }

    def __init__(
        self,
        estimator=None,
        *,
        n_modes=3,
        n_connectors=2,
        connector_epochs=20,
        connector_lr=None,
        reg=1e-4,
        n_train_samples=5,
        train_sampling="split",
        n_samples=10,
        class_weight=None,
        random_state=None,
        n_jobs=None,
        device=None,
        verbose=0,
        memory=None,
    ):
        self.estimator = estimator
        self.n_modes = n_modes
        self.n_connectors = n_connectors
        self.connector_epochs = connector_epochs
        self.connector_lr = connector_lr
        self.reg = reg
        self.n_train_samples = n_train_samples
        self.train_sampling = train_sampling
        self.n_samples = n_samples
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device
        self.verbose = verbose
        self.memory = memory

    # ---------------------------------------------------------------- modes
    def _frozen_modes(self) -> tuple[list[NeuralNet], np.ndarray | None] | None:
        """The user's fitted modes and their classes, or None to train modes."""
        items = self.estimator if isinstance(self.estimator, list) else [self.estimator]
        if not any(isinstance(item, FrozenEstimator) for item in items):
            if isinstance(self.estimator, list):
                raise ValueError(
                    "A list estimator must hold fitted skorch nets wrapped in "
                    "sklearn.frozen.FrozenEstimator, "
                    "e.g. [FrozenEstimator(net_a), FrozenEstimator(net_b)]."
                )
            return None
        nets, classes = [], None
        for item in items:
            inner = item.estimator if isinstance(item, FrozenEstimator) else item
            if isinstance(inner, NeuralNet):
                check_is_fitted(inner, "module_")
                nets.append(inner)
            elif hasattr(inner, "estimators_") and all(isinstance(n, NeuralNet) for n in inner.estimators_):
                nets.extend(inner.estimators_)
                classes = inner.classes_
            else:
                raise ValueError(
                    f"Cannot take modes from {type(inner).__name__}: pass FrozenEstimator of a fitted "
                    "DeepEnsembleClassifier, ESPROClassifier or skorch net, or a list of FrozenEstimator "
                    "of fitted skorch nets."
                )
        reference = {name: p.shape for name, p in nets[0].module_.named_parameters()}
        for index, net in enumerate(nets[1:], start=1):
            shapes = {name: p.shape for name, p in net.module_.named_parameters()}
            if shapes != reference:
                raise ValueError(
                    f"Mode {index} has another architecture than mode 0 (parameter names or shapes differ); "
                    "all modes must share one architecture."
                )
        return nets, classes

    @staticmethod
    def _encode(y, classes: np.ndarray) -> np.ndarray:
        """Column indices of the labels ``y`` among ``classes`` (all must be known)."""
        y = np.asarray(y).ravel()
        unknown = np.setdiff1d(np.unique(y), classes)
        if len(unknown):
            raise ValueError(
                f"y has labels {unknown[:10].tolist()} that the modes were not trained on "
                f"(their classes are {classes[:10].tolist()})."
            )
        return np.searchsorted(classes, y).astype(np.int64)

    # ------------------------------------------------------------------ fit
    def _spec(self) -> SimplexSpec:
        return SimplexSpec(
            n_vertices=0,
            vertex_epochs=self.connector_epochs,
            vertex_lr=self.connector_lr,
            reg=self.reg,
            n_train_samples=self.n_train_samples,
            train_sampling=self.train_sampling,
            n_samples=self.n_samples,
        )

    @fill_doc
    @_fit_context(prefer_skip_nested_validation=False)
    @atomic_fit
    def fit(self, X, y, sample_weight=None):
        """Obtain the modes (train or take them) and add the connectors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        y : array-like of shape (n_samples,)
        {sample_weight}

        Returns
        -------
        self : object

        Notes
        -----
        A fit that fails or is interrupted leaves the estimator as it was:
        fitted state is built in locals and assigned at the end.
        """
        data = validate_fit_data(self, X, y, sample_weight)
        start = time.perf_counter()
        template, nets, classes, y_encoded, seed = self._modes(data, y)
        pool = StackedVertices.from_module(nets[0].module_).to("cpu")
        for net in nets[1:]:
            pool = pool.append(module_params(net.module_))
        weights = _Weights(data.sample_weight, class_weights(self.class_weight, classes, y_encoded))
        grown = self._grow(_Complex(tuple(nets), pool, seed), data.X, y_encoded, self.n_connectors, weights)
        state = self._fitted_state(grown, data.X, y_encoded)
        vars(self).update(state, estimator_=template, classes_=classes, _input_shape=data.input_shape)
        self.fit_time_ = time.perf_counter() - start
        return self

    def _modes(self, data, y) -> tuple[NeuralNet, list[NeuralNet], np.ndarray, np.ndarray, int]:
        """The modes' template, the modes (trained here, or the user's frozen
        ones), the classes, the labels encoded for them, and the connectors' seed."""
        frozen = self._frozen_modes()
        if frozen is None:
            seeds = draw_seeds(self.random_state, self.n_modes + 1)
            template = member_template(
                self.estimator,
                data.input_shape,
                len(data.classes),
                type(self).__name__,
                class_weights(self.class_weight, data.classes, data.y),
            )
            members = fit_members(
                template,
                data.X,
                data.y,
                data.classes,
                SimplexSpec(),
                seeds[:-1],
                owner=type(self).__name__,
                n_jobs=self.n_jobs,
                device=self.device,
                verbose=self.verbose,
                sample_weight=data.sample_weight,
                memory=self.memory,
            )
            return template, [m.net for m in members], data.classes, data.y, int(seeds[-1])
        nets, classes = frozen
        seed = int(draw_seeds(self.random_state, 1)[0])
        if classes is None and hasattr(nets[0], "classes_"):
            classes = np.asarray(nets[0].classes_)
        y_encoded = data.y if classes is None else self._encode(y, classes)
        classes = data.classes if classes is None else classes
        check_output_size(nets[0], data.X, classes)
        return clone(nets[0]), nets, classes, y_encoded, seed

    def _grow(
        self, grown: _Complex, X, y, n_total: int, weights: _Weights, stop_ratio: float | None = None
    ) -> _Complex:
        """Train connectors until there are ``n_total``, or until one from the
        second on has a relative height below ``stop_ratio``; a new complex."""
        spec, buffers = self._spec(), module_buffers(grown.modes[0].module_)
        scale, reg_scale = grown.mode_scale(), grown.reg_scale()
        missing = range(grown.n_connectors, n_total)
        for j in progress_bar(
            missing, verbose=self.verbose, desc="SPROConnector connectors", unit="connector"
        ):
            seed, faces = vertex_seed(grown.seed, j), grown.faces()
            where = f"connector {j + 1}"
            trained = train_vertex(
                grown.modes[0],
                grown.vertices,
                buffers,
                X,
                y,
                seed,
                spec,
                faces=faces,
                reg_scale=reg_scale,
                where=where,
                verbose=self.verbose,
                sample_weight=weights.rows,
                class_weights=weights.classes,
            )
            flat = trained.flat()
            per_simplex = torch.stack([face(flat) for face in trained.faces])
            grown = replace(
                grown,
                vertices=grown.vertices.append(trained.vertex),
                log_volumes=(*grown.log_volumes, float(torch.logsumexp(per_simplex, 0))),
                heights=(*grown.heights, trained.mean_height(flat) / scale),
                start_heights=(*grown.start_heights, trained.mean_height(trained.start) / scale),
                histories=(*grown.histories, trained.history),
            )
            if stop_ratio is not None and j >= 1 and grown.heights[-1] < stop_ratio:
                break
        return grown

    def _fitted_state(self, grown: _Complex, X, y) -> dict:
        """Every fitted attribute that depends on the complex: its curves, the
        prediction networks and their scores (nothing is assigned here)."""
        nets, n_modes, pool = grown.modes, grown.n_modes, grown.vertices
        weights = self._prediction_weights(grown)
        # Without connectors the networks are the modes, each with its own statistics.
        own = _mode_norm_buffers(nets) if grown.n_connectors == 0 else None
        networks = _networks_at(nets, pool, weights, own, X)
        loss, accuracy = _network_scores(networks, X, y)
        groups = np.repeat(np.arange(n_modes), len(weights) // n_modes)
        if grown.n_connectors == 0:  # the prediction networks are the modes
            mode_loss, mode_accuracy = loss, accuracy
        else:
            modes = _networks_at(nets, pool, torch.eye(pool.n_vertices)[:n_modes], _mode_norm_buffers(nets))
            mode_loss, mode_accuracy = _network_scores(modes, X, y)
        log_volumes = np.array(grown.log_volumes, dtype=np.float64)
        return {
            "_complex": grown,
            "estimators_": list(nets),
            "_connector_seed": grown.seed,
            "vertices_": pool,
            "simplices_": [tuple(face) for face in grown.faces()],
            "log_volumes_": log_volumes,
            "volumes_": np.exp(log_volumes),
            "relative_heights_": np.array(grown.heights, dtype=np.float64),
            "start_relative_heights_": np.array(grown.start_heights, dtype=np.float64),
            "n_connectors_": grown.n_connectors,
            "connector_histories_": list(grown.histories),
            "networks_": networks,
            "sample_weights_": weights.numpy(),
            "simplex_train_loss_": np.array([loss[groups == i].mean() for i in range(n_modes)]),
            "simplex_train_accuracy_": np.array([accuracy[groups == i].mean() for i in range(n_modes)]),
            "mode_train_loss_": mode_loss,
            "mode_train_accuracy_": mode_accuracy,
        }

    def _prediction_weights(self, grown: _Complex) -> torch.Tensor:
        """``n_samples`` uniform points of every simplex (the modes, without connectors)."""
        n_modes = grown.n_modes
        if grown.n_connectors == 0:
            return torch.eye(n_modes)
        generator = make_generator(vertex_seed(grown.seed, 10_000))
        weights = torch.zeros((n_modes * self.n_samples, grown.vertices.n_vertices))
        for i, face in enumerate(grown.faces()):
            points = sample_simplex_weights(len(face), self.n_samples, generator)
            weights[i * self.n_samples : (i + 1) * self.n_samples, face] = points
        return weights

    # --------------------------------------------------------- measurements
    def path_metrics(self, X, y, *, start: int = 0, end: int = 1, n_points: int = 11) -> pd.DataFrame:
        """Loss and accuracy along two paths between modes ``start`` and ``end``.

        * ``"line"``: the straight segment ``(1 - t) w_start + t w_end``;
        * ``"complex"``: ``w_start -> c -> w_end`` through the centroid ``c``
          of the connectors, which lies in both simplexes, so the whole path
          stays inside the complex.

        Networks on the paths get their own BatchNorm statistics, estimated
        on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Data to evaluate on (training data shows the loss barrier).
        y : array-like of shape (n_samples,)
        start, end : int, default=0, 1
            Indices of the two modes.
        n_points : int, default=11
            Points per path, ``t`` evenly spaced in [0, 1].

        Returns
        -------
        pandas.DataFrame
            Columns ``path``, ``t``, ``loss`` (mean cross-entropy) and
            ``accuracy``.
        """
        x = validate_predict_data(self, X).numpy()
        y_encoded = self._encode(y, self.classes_)
        n_modes, n_connectors = len(self.estimators_), self.n_connectors_
        if not (0 <= start < n_modes and 0 <= end < n_modes and start != end):
            raise ValueError(
                f"start and end must be two different mode indices below {n_modes}, got {start}, {end}."
            )
        if n_connectors == 0:
            raise ValueError("The complex has no connector (n_connectors=0): there is no path through it.")
        if n_points < 2:
            raise ValueError(f"n_points must be >= 2, got {n_points}.")
        n_vertices = self.vertices_.n_vertices
        eye = torch.eye(n_vertices, dtype=torch.float64)
        centroid = torch.zeros(n_vertices, dtype=torch.float64)
        centroid[n_modes:] = 1.0 / n_connectors
        ts = torch.linspace(0, 1, n_points, dtype=torch.float64)
        line = (1 - ts)[:, None] * eye[start] + ts[:, None] * eye[end]
        first = (ts <= 0.5)[:, None]
        through = torch.where(
            first,
            (1 - 2 * ts)[:, None] * eye[start] + (2 * ts)[:, None] * centroid,
            (2 - 2 * ts)[:, None] * centroid + (2 * ts - 1)[:, None] * eye[end],
        )
        nets, vertices = self.estimators_, self.vertices_
        rows = []
        for name, weights in (("line", line), ("complex", through)):
            loss, accuracy = _network_scores(_networks_at(nets, vertices, weights.float(), X=x), x, y_encoded)
            rows += [
                {"path": name, "t": float(t), "loss": float(lo), "accuracy": float(a)}
                for t, lo, a in zip(ts, loss, accuracy)
            ]
        return pd.DataFrame(rows)

    @atomic_fit
    def grow_until_collapse(
        self, X, y, *, sample_weight=None, max_connectors: int = 8, collapse_ratio: float = 0.05
    ):
        """Add connectors one at a time until the complex's volume collapses.

        The dimensionality experiment of the paper: each new connector is
        trained with the volume regulariser pushing it away from the older
        vertices; once the low-loss region has no direction left that the
        complex does not already span, the new connector stays close to them
        and the volume collapses. Collapse is declared at the first connector,
        from the second on, whose relative height (``relative_heights_``)
        stays below ``collapse_ratio``. The first connector is never a
        collapse: its height is the distance from the modes to the region
        between them.

        Read the result against ``start_relative_heights_``, the height each
        connector had before training (at the centroid of all current
        vertices, plus 1 % noise): a connector that barely trained tells
        nothing, so give each connector enough ``connector_epochs`` and
        ``reg > 0``.

        Parameters
        ----------
        X, y : array-like
            The training data used in fit.
        sample_weight : array-like of shape (n_samples,), default=None
            As in :meth:`fit` (with ``class_weight``).
        max_connectors : int, default=8
            Stop here if no collapse happened.
        collapse_ratio : float, default=0.05
            Relative height below which a connector adds no new direction.

        Returns
        -------
        self : object
            With ``collapse_at_`` (number of connectors at the collapse, or
            None), ``n_connectors_`` (connectors in the complex now, the
            collapsed one included) and the curves ``log_volumes_``,
            ``relative_heights_`` and ``start_relative_heights_``.
        """
        check_is_fitted(self)
        if self.reg == 0:
            warnings.warn(
                "reg=0: nothing pushes a connector out of the older vertices' span, so a 'collapse' "
                "only means the connector did not move. Refit with reg > 0 for the dimensionality "
                "experiment.",
                UserWarning,
                stacklevel=2,
            )
        x = validate_predict_data(self, X).numpy()
        y_encoded = self._encode(y, self.classes_)
        weights = _Weights(
            validate_sample_weight(sample_weight, x),
            class_weights(self.class_weight, self.classes_, y_encoded),
        )
        already = self.n_connectors_
        grown = self._grow(self._complex, x, y_encoded, max_connectors, weights, stop_ratio=collapse_ratio)
        state = self._fitted_state(grown, x, y_encoded)
        low = np.flatnonzero(state["relative_heights_"][max(already, 1) :] < collapse_ratio)
        vars(self).update(state, collapse_at_=int(low[0] + max(already, 1) + 1) if len(low) else None)
        return self

    # ----------------------------------------------------------- file format
    def _file_members(self) -> list[Member]:
        """The complex as one stored member (see :mod:`skspro._io`)."""
        group = self.networks_.groups[0]
        return [
            Member(
                net=self.estimators_[0],
                simplex=self.vertices_,
                sample_weights=group.weights,
                norm_buffers=group.norm_buffers,
            )
        ]

    def _file_extra(self) -> dict:
        """The modes and the curves, stored beside the member."""
        n_modes = len(self.estimators_)
        fields = {
            **{name: getattr(self, name).tolist() for name in _STORED_ARRAYS},
            "simplices": [list(s) for s in self.simplices_],
            "n_connectors": int(self.n_connectors_),
            "connector_seed": int(self._connector_seed),
            # the mode of each prediction network (read by format-1 readers of 0.1.0)
            "sample_groups": np.repeat(np.arange(n_modes), len(self.sample_weights_) // n_modes).tolist(),
        }
        return {"modes": self.estimators_, "fields": fields}

    def _file_fitted(self) -> dict:
        """Fitted attributes the file header stores beyond the networks: none (the curves are in
        the connector record)."""
        return {}

    def _restore(self, members: list[Member], extra: dict | None) -> None:
        """Set the fitted state from a file's member and modes (histories are not stored)."""
        nets, fields, member = extra["modes"], extra["fields"], members[0]
        arrays = {name: np.asarray(fields[name], dtype=np.float64) for name in _STORED_ARRAYS}
        curves = [
            tuple(arrays[name]) for name in ("log_volumes_", "relative_heights_", "start_relative_heights_")
        ]
        grown = _Complex(tuple(nets), member.simplex, fields["connector_seed"], *curves)
        vars(self).update(
            arrays,
            _complex=grown,
            estimators_=nets,
            vertices_=member.simplex,
            networks_=_networks_at(nets, member.simplex, member.sample_weights, member.norm_buffers),
            sample_weights_=member.sample_weights.numpy(),
            simplices_=[tuple(face) for face in grown.faces()],
            n_connectors_=grown.n_connectors,
            _connector_seed=grown.seed,
            connector_histories_=[],
        )


class _Weights(NamedTuple):
    """The rows' and the classes' weights in the connectors' loss (None: unweighted)."""

    rows: np.ndarray | None
    classes: np.ndarray | None


#: Fitted arrays of the connector stored in a file as they are.
_STORED_ARRAYS = CONNECTOR_CURVES + CONNECTOR_MODE_ARRAYS


def _networks_at(
    nets, vertices: StackedVertices, weights: torch.Tensor, norm_buffers=None, X=None
) -> SampledNetworks:
    """The networks at barycentric ``weights`` over the complex's ``vertices``, with the
    first mode's buffers; their normalisation statistics are ``norm_buffers``, or
    re-estimated on ``X``."""
    buffers = module_buffers(nets[0].module_)
    if norm_buffers is None:
        estimated = norm_statistics(nets[0], vertices, weights, buffers, X)
        norm_buffers = {name: b.cpu() for name, b in estimated.items()}
    return networks_of(nets[0], [NetworkGroup(vertices, weights, buffers, norm_buffers)])


def _mode_norm_buffers(nets: list[NeuralNet]) -> dict[str, torch.Tensor]:
    """Each mode's own normalisation statistics, stacked."""
    names = norm_buffer_names(nets[0].module_)
    return {name: torch.stack([dict(m.module_.named_buffers())[name] for m in nets]).cpu() for name in names}


def _network_scores(networks: SampledNetworks, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy and accuracy of each network on (X, y)."""
    proba = networks.predict_proba_networks(torch.as_tensor(X))
    picked = proba[:, np.arange(len(y)), y]
    loss = -np.log(np.clip(picked, 1e-12, None)).mean(1)
    accuracy = (proba.argmax(-1) == y[None, :]).mean(1)
    return loss, accuracy
