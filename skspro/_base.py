"""The meta-estimator shared by ESPROClassifier and DeepEnsembleClassifier,
and the prediction methods every skspro estimator shares."""

from __future__ import annotations

import os
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from skorch import NeuralNet

from ._docstrings import fill_doc
from ._inputs import (
    EARLY_STOPPING_SPLIT,
    TemplateMixin,
    default_estimator,
    draw_seeds,
    member_template,
    split_seed,
    validate_fit_data,
    validate_predict_data,
)
from ._members import (
    Member,
    SimplexSpec,
    check_fit,
    fit_members,
    sampled_networks,
)
from ._safety import atomic_fit
from ._validation import split_validation
from ._weights import class_weights
from .simplex import StackedVertices

__all__ = ["BaseSimplexEnsemble", "NetworksPredictorMixin", "default_estimator"]


class NetworksPredictorMixin:
    """``predict_proba``, ``predict`` and ``predict_proba_networks`` from the
    fitted ``networks_`` (a :class:`~skspro.simplex.SampledNetworks`).

    The prediction path reads fitted state and writes nothing, so a fitted
    estimator can be called from many threads at once.
    """

    def predict_proba_networks(self, X) -> np.ndarray:
        """Class probabilities of every network evaluated at predict time.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)

        Returns
        -------
        ndarray of shape (`n_networks_`, n_samples, n_classes)
            Member by member, each member's sampled networks in the order of
            ``sample_weights_``. Their mean over axis 0 is
            :meth:`predict_proba`; their spread measures epistemic
            uncertainty (e.g. mutual information).
        """
        x = validate_predict_data(self, X)
        return _finite(self.networks_.predict_proba_networks(x))

    def predict_proba(self, X) -> np.ndarray:
        """Mean class probabilities over all sampled networks.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``. Deterministic for a fitted
            estimator: the sample points were drawn once, at fit.
        """
        x = validate_predict_data(self, X)
        return _finite(self.networks_.predict_proba(x))

    def predict(self, X) -> np.ndarray:
        """Most probable class of the ensemble for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def n_networks_(self) -> int:
        """Networks evaluated per prediction."""
        return self.networks_.n_networks

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        return tags


def _finite(proba: np.ndarray) -> np.ndarray:
    """``proba``, or an error naming the rows whose probabilities are not finite
    (never a silent ``classes_[0]`` from ``argmax`` over NaN)."""
    bad = ~np.isfinite(proba).reshape(-1, proba.shape[-2], proba.shape[-1]).all(axis=(0, 2))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"The networks' outputs are not finite for {len(rows)} rows (first: row {rows[0]}): the "
            "inputs are probably too large for the networks (values near float32's limit overflow "
            "inside them). Scale the features (e.g. StandardScaler) or check these rows."
        )
    return proba


class BaseSimplexEnsemble(TemplateMixin, NetworksPredictorMixin, ClassifierMixin, BaseEstimator):
    """Members cloned from a skorch template, each with a simplex of weights.

    Subclasses define :meth:`_simplex_spec`. Fitted attributes are
    documented on the public estimators.
    """

    _parameter_constraints: dict = {
        "estimator": [NeuralNet, None],
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "device": [str, None],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
    }

    def _simplex_spec(self) -> SimplexSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    @fill_doc
    @_fit_context(prefer_skip_nested_validation=False)
    @atomic_fit
    def fit(self, X, y, sample_weight=None):
        """Train the members and grow their simplexes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training inputs; higher-dimensional arrays (e.g. images shaped
            ``(n, channels, height, width)``) are passed to the module as they
            are. Cast to float32.
        y : array-like of shape (n_samples,)
            Class labels (any hashable type).
        {sample_weight}

        Returns
        -------
        self : object
            The fitted estimator.

        Notes
        -----
        A fit that fails or is interrupted (Ctrl-C) leaves the estimator as
        it was before the call: fitted state is built in locals and assigned
        at the end. With ``warm_start=True`` on a fitted estimator, its
        members and vertices are kept bit for bit and only the missing members
        and vertices are trained (with the same ``random_state`` the result
        equals a fit from scratch).
        """
        previous = self._members if self.warm_start and hasattr(self, "_members") else None
        previous_fit = (self.classes_, self._input_shape) if previous is not None else None
        data = validate_fit_data(self, X, y, sample_weight)
        if previous_fit is not None:
            _check_warm_start_data(previous_fit, data)
        weights = class_weights(self.class_weight, data.classes, data.y)
        owner = type(self).__name__
        template = member_template(self.estimator, data.input_shape, len(data.classes), owner, weights)
        spec = self._simplex_spec()
        spec.check(template)
        seeds = draw_seeds(self.random_state, self.n_members)
        validation = None
        if self.early_stopping:
            data, validation = split_validation(
                data,
                self.validation_fraction,
                split_seed(seeds[0], EARLY_STOPPING_SPLIT),
                self.n_iter_no_change,
                owner,
                template=template,
            )
        net = check_fit(
            template,
            data.X,
            data.y,
            data.classes,
            self.n_members,
            owner=owner,
            device=self.device,
            sample_weight=data.sample_weight,
        )
        start = time.perf_counter()
        spec, chosen = self._fit_spec(template, net, data, spec, int(seeds[0]), previous)
        members = fit_members(
            template,
            data.X,
            data.y,
            data.classes,
            spec,
            seeds,
            owner=type(self).__name__,
            n_jobs=self.n_jobs,
            device=self.device,
            verbose=self.verbose,
            previous=previous,
            sample_weight=data.sample_weight,
            memory=self.memory,
            validation=validation,
            checked=True,
        )
        state = _fitted_state(members)
        vars(self).update(
            state,
            **chosen,
            estimator_=template,
            classes_=data.classes,
            _input_shape=data.input_shape,
            fit_time_=time.perf_counter() - start,
        )
        return self

    def _fit_spec(self, template, net, data, spec: SimplexSpec, first_seed: int, previous) -> tuple:
        """The spec the members are fitted to, and fitted attributes that go with it (a
        subclass decides settings from the data here; ``net`` is the template initialised)."""
        return spec, {}

    # ----------------------------------------------------------- file format
    def _file_members(self) -> list[Member]:
        """The members a file stores (see :mod:`skspro._io`)."""
        return self._members

    def _file_extra(self) -> None:
        """Nothing beyond the members."""
        return None

    def _file_fitted(self) -> dict:
        """Fitted attributes the file header stores beyond the networks: none."""
        return {}

    def _restore(self, members: list[Member], extra: dict | None) -> None:
        """Set the fitted state from members read from a file (histories are not stored)."""
        vars(self).update(_fitted_state(members), vertex_histories_=[[] for _ in members])


def _check_warm_start_data(previous_fit: tuple, data) -> None:
    classes, input_shape = previous_fit
    if not np.array_equal(classes, data.classes):
        raise ValueError(
            f"warm_start=True needs the classes of the first fit ({np.asarray(classes)[:10].tolist()}), "
            f"got {data.classes[:10].tolist()}. Refit with warm_start=False."
        )
    if tuple(input_shape) != tuple(data.input_shape):
        raise ValueError(
            f"warm_start=True needs rows shaped as in the first fit {tuple(input_shape)}, got "
            f"{tuple(data.input_shape)}. Refit with warm_start=False."
        )


def _relative_edge_lengths(simplex: StackedVertices) -> np.ndarray:
    return (simplex.edge_lengths()[1:] / simplex.flat()[0].double().norm()).cpu().numpy()


def _padded(rows: list, dtype=np.float64) -> np.ndarray:
    """Rows of per-vertex values as one array, NaN where a simplex stopped growing earlier."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _fitted_state(members: list[Member]) -> dict:
    """Every fitted attribute of an ensemble, from its members (nothing is assigned here)."""
    return {
        "_members": members,
        "networks_": sampled_networks(members),
        "estimators_": [m.net for m in members],
        "simplexes_": [m.simplex for m in members],
        "sample_weights_": [m.sample_weights.cpu().numpy() for m in members],
        "n_vertices_": np.array([m.simplex.n_vertices - 1 for m in members]),
        "validation_nlls_": [list(m.validation_nlls) for m in members],
        "log_volumes_": _padded([m.log_volumes for m in members]),
        "relative_edge_lengths_": _padded([_relative_edge_lengths(m.simplex) for m in members]),
        "vertex_histories_": [list(m.vertex_histories) for m in members],
        "member_fit_times_": np.array([m.fit_time for m in members]),
        "vertex_fit_times_": _padded([m.vertex_times for m in members]),
    }
