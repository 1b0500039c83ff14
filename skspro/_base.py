"""The meta-estimator shared by ESPROClassifier and DeepEnsembleClassifier."""

from __future__ import annotations

import contextlib
import time
from numbers import Integral

import numpy as np
import torch
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet, NeuralNetClassifier

from ._devices import resolve_devices
from ._members import Member, SimplexSpec, StackedMembers, device_of, fit_member, seeded_torch
from ._safety import atomic_fit
from .modules import MLP
from .simplex import forward_networks

__all__ = ["BaseSimplexEnsemble", "default_estimator"]

_MAX_SEED = np.iinfo(np.int32).max


def default_estimator() -> NeuralNetClassifier:
    """The skorch template used when ``estimator=None``.

    A :class:`~skspro.modules.MLP` with two hidden layers of 128 units,
    cross-entropy, Adam (lr 1e-3), batch size 64, 40 epochs, no internal
    validation split. Input and output sizes are filled in at fit. Scale
    your features first (e.g. ``StandardScaler`` in a ``Pipeline``).

    Returns
    -------
    skorch.NeuralNetClassifier
        An unfitted template.
    """
    return NeuralNetClassifier(
        MLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=64,
        max_epochs=40,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )


@contextlib.contextmanager
def _numeric_input():
    """Turn numpy's conversion errors into advice."""
    try:
        yield
    except TypeError as error:
        if "BFloat16" in str(error):
            raise TypeError(
                "X is a bfloat16 tensor, which numpy cannot hold; pass X.float() (or X.float().numpy()). "
                "Inputs are cast to float32 anyway."
            ) from error
        raise
    except ValueError as error:
        if "could not convert" in str(error) or "convert string" in str(error):
            raise ValueError(
                f"X must be numeric, but it has non-numeric values ({error}). Encode string or "
                "categorical columns first, e.g. with sklearn.preprocessing.OneHotEncoder or "
                "OrdinalEncoder in a Pipeline (sklearn.compose.ColumnTransformer for mixed columns)."
            ) from error
        raise


class BaseSimplexEnsemble(ClassifierMixin, BaseEstimator):
    """Members cloned from a skorch template, each with a simplex of weights.

    Subclasses define :meth:`_simplex_spec`. Fitted attributes are
    documented on the public estimators.
    """

    _parameter_constraints: dict = {
        "estimator": [NeuralNet, None],
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "device": [str, None],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def _simplex_spec(self) -> SimplexSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ fit
    def _template(self, X: np.ndarray, n_classes: int) -> NeuralNet:
        return self._template_for(X.shape[1:], n_classes)

    def _template_for(self, input_shape: tuple, n_classes: int) -> NeuralNet:
        """The skorch template of a member, with skspro's MLP sized for the data."""
        if self.estimator is not None and not isinstance(self.estimator, NeuralNet):
            raise ValueError(
                f"{type(self).__name__} needs a skorch net template here, "
                f"got {type(self.estimator).__name__}."
            )
        template = default_estimator() if self.estimator is None else clone(self.estimator)
        params = template.get_params(deep=False)
        if params.get("module") is MLP:
            # Fill in the sizes of skspro's own MLP unless the user set them.
            fill = {"module__input_dim": int(np.prod(input_shape)), "module__n_classes": n_classes}
            template.set_params(**{k: v for k, v in fill.items() if k not in params})
        return template

    def _validate_training_data(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        with _numeric_input():
            X, y = validate_data(
                self,
                X,
                y,
                allow_nd=True,
                dtype=[np.float32, np.float64],
                ensure_min_samples=2,
                y_numeric=False,
            )
        check_classification_targets(y)
        encoder = LabelEncoder()
        y_encoded = encoder.fit_transform(y).astype(np.int64)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; got only class "
                f"{self.classes_[0]!r}. Check the labels (or the split that produced them)."
            )
        self._input_shape = X.shape[1:]
        return np.ascontiguousarray(X, dtype=np.float32), y_encoded

    def _n_threads(self, n_jobs: int) -> int | None:
        if n_jobs == 1:
            return None
        return max(1, torch.get_num_threads() // n_jobs)

    @_fit_context(prefer_skip_nested_validation=False)
    @atomic_fit
    def fit(self, X, y):
        """Train the members and grow their simplexes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training inputs; higher-dimensional arrays (e.g. images shaped
            ``(n, channels, height, width)``) are passed to the module as they
            are. Cast to float32.
        y : array-like of shape (n_samples,)
            Class labels (any hashable type).

        Returns
        -------
        self : object
            The fitted estimator.

        Notes
        -----
        A fit that fails or is interrupted (Ctrl-C) leaves the estimator as
        it was before the call. With ``warm_start=True`` on a fitted
        estimator, its members and vertices are kept bit for bit and only the
        missing members and vertices are trained (with the same
        ``random_state`` the result equals a fit from scratch).
        """
        previous = self._warm_members()
        X, y_encoded = self._validate_training_data(X, y)
        if previous is not None and not np.array_equal(previous[1], self.classes_):
            raise ValueError(
                f"warm_start=True needs the classes of the first fit ({list(previous[1])[:10]}), "
                f"got {list(self.classes_)[:10]}. Refit with warm_start=False."
            )
        start = time.perf_counter()
        members = self._fit_members(
            X,
            y_encoded,
            self._simplex_spec(),
            self.n_members,
            previous=None if previous is None else previous[0],
        )
        self.fit_time_ = time.perf_counter() - start
        self._set_fitted_members(members)
        return self

    def _draw_seeds(self, n_seeds: int) -> np.ndarray:
        """One integer seed per job, from ``random_state``, once per fit."""
        return check_random_state(self.random_state).randint(_MAX_SEED, size=n_seeds)

    def _warm_members(self) -> tuple[list[Member], np.ndarray] | None:
        """The members (and classes) a warm start continues from, if any."""
        if not getattr(self, "warm_start", False) or not hasattr(self, "_members"):
            return None
        return self._members, self.classes_

    def _fit_members(
        self,
        X: np.ndarray,
        y: np.ndarray,
        spec: SimplexSpec,
        n_members: int,
        seeds: np.ndarray | None = None,
        previous: list[Member] | None = None,
    ) -> list[Member]:
        """Train ``n_members`` members from the template through joblib.

        Seeds are drawn before dispatch, so results do not depend on
        ``n_jobs``.
        """
        template = self._template(X, len(self.classes_))
        probe = clone(template).set_params(device="cpu")
        with seeded_torch(0):
            probe.initialize()
        self._check_output_size(probe, X)
        self._seeds = self._draw_seeds(n_members) if seeds is None else seeds
        previous = list(previous or [])
        if len(previous) > n_members:
            raise ValueError(
                f"warm_start=True can add members but not remove them: the estimator has {len(previous)}, "
                f"n_members={n_members}. Refit with warm_start=False."
            )
        self._seeds[: len(previous)] = [m.seed for m in previous]
        n_jobs = effective_n_jobs(self.n_jobs)
        devices = resolve_devices(self.device, n_jobs, n_members)
        return Parallel(n_jobs=self.n_jobs)(
            delayed(fit_member)(
                template,
                X,
                y,
                int(seed),
                spec,
                name=f"{type(self).__name__} member {i + 1}/{n_members}",
                index=i,
                device=devices[i],
                verbose=self.verbose,
                n_threads=self._n_threads(n_jobs),
                member=previous[i] if i < len(previous) else None,
            )
            for i, seed in enumerate(self._seeds)
        )

    def _check_output_size(self, net: NeuralNet, X: np.ndarray) -> None:
        """Fail before any training if the module's output does not fit the classes."""
        module = net.module_
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = module(torch.as_tensor(X[:2], device=device_of(net)))
        finally:
            module.train(was_training)
        n_out = out.shape[-1] if isinstance(out, torch.Tensor) else None
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or n_out != len(self.classes_):
            raise ValueError(
                f"The module returns {n_out} outputs per row but y has {len(self.classes_)} classes "
                f"({list(self.classes_)[:10]}). Make the module's last layer produce "
                f"{len(self.classes_)} outputs (e.g. set estimator__module__n_classes)."
            )

    def _set_fitted_members(self, members: list[Member]) -> None:
        self.estimators_ = [m.net for m in members]
        self.simplexes_ = [m.simplex for m in members]
        self.sample_weights_ = [m.sample_weights.cpu().numpy() for m in members]
        self.log_volumes_ = np.array([m.log_volumes for m in members], dtype=np.float64).reshape(
            len(members), -1
        )
        self.relative_edge_lengths_ = np.array(
            [(s.edge_lengths()[1:] / s.flat()[0].double().norm()).cpu().numpy() for s in self.simplexes_],
            dtype=np.float64,
        ).reshape(len(members), -1)
        self.vertex_histories_ = [m.vertex_histories for m in members]
        self.member_fit_times_ = np.array([m.fit_time for m in members])
        self.vertex_fit_times_ = np.array([m.vertex_times for m in members], dtype=np.float64).reshape(
            len(members), -1
        )
        self._set_prediction_members(members)

    def _set_prediction_members(self, members: list[Member]) -> None:
        """The sampled networks that predict_proba averages."""
        self._members = members
        self.n_networks_ = sum(len(m.sample_weights) for m in members)
        # A cache filled by predict (in place: predict leaves __dict__ as it was).
        self._stacked: dict = {}

    def _prediction_groups(self) -> list:
        """Members, or all members as one :class:`StackedMembers` (built once, cached)."""
        members = self._members
        if not StackedMembers.fits(members):
            return members
        key = (device_of(members[0].net), tuple(id(m) for m in members))
        cache = self.__dict__.get("_stacked")
        if cache is None:  # an estimator pickled before the cache existed
            return [StackedMembers(members, key[0])]
        if key not in cache:
            cache.clear()
            cache[key] = StackedMembers(members, key[0])
        return [cache[key]]

    def __getstate__(self):
        state = super().__getstate__()
        if "_stacked" in state:
            state["_stacked"] = {}  # derived (device tensors); rebuilt on first use
        return state

    # -------------------------------------------------------------- predict
    def _member_proba(self, member: Member | StackedMembers, X: torch.Tensor, reduce: bool) -> torch.Tensor:
        """Probabilities of a member's (or a stack's) sampled networks: (S, n, C), or their sum (n, C).

        Returned on the member's device (callers copy to the host once).
        """
        net = member.net
        module = net.module_
        device = device_of(net)
        nonlinearity = net._get_predict_nonlinearity()

        def to_proba(outputs: torch.Tensor) -> torch.Tensor:
            return nonlinearity(outputs.to(torch.float64))

        batched = frozenset(member.norm_buffers)
        x = X.to(device)
        if module.training:
            module.eval()  # left in eval mode, as skorch's own predict does
        outputs = []
        with torch.no_grad():
            for start in range(0, len(member.sample_weights), self._network_chunk):
                chunk = slice(start, start + self._network_chunk)
                proba = forward_networks(
                    module,
                    member.sample_params(chunk, device),
                    member.sample_buffers(chunk, device),
                    x,
                    batched_buffers=batched,
                    transform=to_proba,
                )
                outputs.append(proba.sum(0) if reduce else proba)
        if len(outputs) == 1:
            return outputs[0]
        return torch.stack(outputs).sum(0) if reduce else torch.cat(outputs)

    _network_chunk = 32

    def _validate_predict_data(self, X) -> torch.Tensor:
        check_is_fitted(self)
        if (
            type(X) is np.ndarray
            and X.dtype in (np.float32, np.float64)
            and X.ndim >= 2
            and X.shape[0] >= 1
            and X.shape[1:] == self._input_shape
            and not hasattr(self, "feature_names_in_")
            and np.isfinite(X).all()
        ):
            # What validate_data would accept unchanged, checked in a few
            # microseconds (it costs about 60 on every call, which dominates
            # predict_proba for small batches); anything else takes the full
            # validation and its errors.
            return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))
        with _numeric_input():
            X = validate_data(self, X, reset=False, allow_nd=True, dtype=[np.float32, np.float64])
        if X.shape[1:] != self._input_shape:
            raise ValueError(
                f"X has row shape {X.shape[1:]}, but {type(self).__name__} was fitted on rows of shape "
                f"{self._input_shape}. Pass inputs shaped like the training data."
            )
        return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))

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
        x = self._validate_predict_data(X)
        groups = self._prediction_groups()
        return torch.cat([self._member_proba(g, x, reduce=False).cpu() for g in groups]).numpy()

    def predict_proba(self, X) -> np.ndarray:
        """Mean class probabilities over all sampled networks of all members.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``. Deterministic for a fitted
            estimator: the sample points were drawn once, at fit.
        """
        x = self._validate_predict_data(X)
        total = None
        for group in self._prediction_groups():
            proba = self._member_proba(group, x, reduce=True)
            total = proba if total is None else total + proba.to(total.device)
        # One copy to the host (one synchronisation) per call.
        return (total / self.n_networks_).cpu().numpy()

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        return tags
