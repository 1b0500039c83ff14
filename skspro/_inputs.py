"""What fit and predict accept: data validation and the members' skorch template.

Shared by the ensembles and the connector (composition, not inheritance):
each function takes the estimator it validates for and returns what it
checked, so fitted state is assigned by the caller, once, at the end of fit.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet, NeuralNetClassifier

from ._training import training_steps
from ._weights import check_class_weight_support, validate_sample_weight
from .modules import MLP

__all__ = [
    "FitData",
    "TemplateMixin",
    "check_copyable",
    "check_training_steps",
    "check_output_size",
    "default_estimator",
    "draw_seeds",
    "member_template",
    "validate_fit_data",
    "validate_predict_data",
]

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


class TemplateMixin:
    """``set_params(estimator__...)`` on an estimator whose template is the
    default (``estimator=None``): the default template is set first, then
    changed, so ``GridSearchCV`` over ``estimator__lr`` works without an
    explicit template. ``get_params()["estimator"]`` is that template from
    then on."""

    def set_params(self, **params):
        nested = any(key.startswith("estimator__") for key in params)
        if nested and "estimator" not in params and getattr(self, "estimator", None) is None:
            self.estimator = default_estimator()
        return super().set_params(**params)


def draw_seeds(random_state, n_seeds: int) -> np.ndarray:
    """One integer seed per job, from ``random_state``, once per fit."""
    return check_random_state(random_state).randint(_MAX_SEED, size=n_seeds)


#: What each held-out split of a fit is for, numbered for :func:`split_seed`.
EARLY_STOPPING_SPLIT, HOLDOUT_SPLIT = 1, 2


def split_seed(first_member_seed: int, purpose: int) -> int:
    """The seed of a held-out split (``EARLY_STOPPING_SPLIT``, ``HOLDOUT_SPLIT``), from the
    first member's seed: it does not depend on ``n_members`` or ``n_vertices`` (the member
    seeds are a prefix of one stream), so a warm start that adds members or vertices holds
    out the rows a fit from scratch would."""
    return int(np.random.SeedSequence([int(first_member_seed), purpose]).generate_state(1)[0] % _MAX_SEED)


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
        message = str(error)  # numpy's and pandas' wordings (pandas: a str categorical beside other dtypes)
        if any(part in message for part in ("could not convert", "convert string", "Cannot cast str")):
            raise ValueError(
                f"X must be numeric, but it has non-numeric values ({error}). Encode string or "
                "categorical columns first, e.g. with sklearn.preprocessing.OneHotEncoder or "
                "OrdinalEncoder in a Pipeline (sklearn.compose.ColumnTransformer for mixed columns)."
            ) from error
        raise


def _check_one_array(X) -> None:
    """Refuse a dict of inputs (skorch takes them; skspro's estimators do not)."""
    if isinstance(X, Mapping):
        raise TypeError(
            f"X is a {type(X).__name__} of inputs ({', '.join(map(repr, list(X)[:5]))}); skspro's estimators "
            "take one array of rows, shaped (n_samples, n_features) or (n_samples, ...). For a module with "
            "several inputs, pass them as one array (e.g. np.hstack of the flattened inputs) and split "
            "them in the module's forward."
        )


def _finite_float32(X: np.ndarray) -> tuple[np.ndarray, bool]:
    """``X`` as contiguous float32, and whether it is finite (values beyond
    float32's range become inf in the cast)."""
    with np.errstate(over="ignore"):  # the callers report it
        X32 = np.ascontiguousarray(X, dtype=np.float32)
    return X32, bool(np.isfinite(X32).all())


def _as_float32(estimator, X: np.ndarray) -> np.ndarray:
    """``X`` as contiguous float32; values beyond float32's range are refused (they would become inf)."""
    X32, finite = _finite_float32(X)
    if not finite:
        row = int(np.flatnonzero(~np.isfinite(X32.reshape(len(X32), -1)).all(1))[0])
        raise ValueError(
            f"X has values beyond float32's range (about 3.4e38; e.g. in row {row}), which "
            f"{type(estimator).__name__} computes in. Scale the features first (e.g. StandardScaler)."
        )
    return X32


class FitData(NamedTuple):
    """Validated training data: float32 ``X``, encoded ``y``, the classes, the
    row shape, and the rows' weights (None when unweighted)."""

    X: np.ndarray
    y: np.ndarray
    classes: np.ndarray
    input_shape: tuple
    sample_weight: np.ndarray | None = None


def validate_fit_data(estimator, X, y, sample_weight=None) -> FitData:
    """Validate training data as scikit-learn does (``n_features_in_`` and
    ``feature_names_in_`` are set on ``estimator`` by ``validate_data``;
    ``sample_weight`` as in :func:`skspro._weights.validate_sample_weight`)."""
    _check_one_array(X)
    with _numeric_input():
        X, y = validate_data(
            estimator,
            X,
            y,
            allow_nd=True,
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
            y_numeric=False,
        )
    check_classification_targets(y)
    encoder = LabelEncoder()
    y_encoded = encoder.fit_transform(y).astype(np.int64)
    if len(encoder.classes_) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least 2 classes in y; got only class "
            f"{encoder.classes_.tolist()[0]!r}. Check the labels (or the split that produced them)."
        )
    weight = validate_sample_weight(sample_weight, X)
    return FitData(_as_float32(estimator, X), y_encoded, encoder.classes_, X.shape[1:], weight)


def validate_predict_data(estimator, X) -> torch.Tensor:
    """Validate prediction inputs against what ``estimator`` was fitted on; a float32 tensor."""
    check_is_fitted(estimator)
    input_shape = estimator._input_shape
    if (
        type(X) is np.ndarray
        and X.dtype in (np.float32, np.float64)
        and X.ndim >= 2
        and X.shape[0] >= 1
        and X.shape[1:] == input_shape
        and not hasattr(estimator, "feature_names_in_")
    ):
        # What validate_data would accept unchanged, checked in a few
        # microseconds (it costs about 60 on every call, which dominates
        # predict_proba for small batches): finite after the cast to
        # float32, so float64 values beyond its range are caught too.
        # Anything else takes the full validation and its errors.
        X32, finite = _finite_float32(X)
        if finite:
            return torch.as_tensor(X32)
    _check_one_array(X)
    with _numeric_input():
        X = validate_data(estimator, X, reset=False, allow_nd=True, dtype=[np.float64, np.float32])
    if X.shape[1:] != input_shape:
        raise ValueError(
            f"X has row shape {X.shape[1:]}, but {type(estimator).__name__} was fitted on rows of shape "
            f"{input_shape}. Pass inputs shaped like the training data."
        )
    return torch.as_tensor(_as_float32(estimator, X))


def member_template(
    estimator, input_shape: tuple, n_classes: int, owner: str, class_weights: np.ndarray | None = None
) -> NeuralNet:
    """The skorch template of a member: a clone of ``estimator`` (or the
    default), with skspro's MLP sized for the data unless the user set it,
    and ``class_weights`` (one per class) as the criterion's ``weight``."""
    if estimator is not None and not isinstance(estimator, NeuralNetClassifier):
        raise ValueError(
            f"{owner} needs a skorch NeuralNetClassifier template (any module, criterion, optimizer), got "
            f"{type(estimator).__name__}. Wrap the module in skorch.NeuralNetClassifier, or pass None for "
            "skspro.default_estimator()."
        )
    template = default_estimator() if estimator is None else clone(estimator)
    params = template.get_params(deep=False)
    if params.get("module") is MLP:
        fill = {"module__input_dim": int(np.prod(input_shape)), "module__n_classes": n_classes}
        template.set_params(**{k: v for k, v in fill.items() if k not in params})
    if class_weights is not None:
        if params.get("criterion__weight") is not None:
            raise ValueError(
                f"{owner} got class_weight and a template with criterion__weight; set one of them "
                "(class_weight=None keeps the template's weights)."
            )
        template.set_params(criterion__weight=torch.as_tensor(class_weights))
        try:
            criterion = template.initialized_instance(
                template.criterion, template.get_params_for("criterion")
            )
        except TypeError:  # it does not take weight=
            criterion = None
        given = template.criterion
        check_class_weight_support(criterion, class_weights, getattr(given, "__name__", type(given).__name__))
    return template


def check_output_size(net: NeuralNet, X: np.ndarray, classes: np.ndarray) -> None:
    """Fail before any training if the module cannot run on ``X`` or its
    outputs do not fit the classes and the criterion (one forward on 2 rows)."""
    module = net.module_
    was_training = module.training
    module.eval()
    x = torch.as_tensor(X[:2], device=net.device or "cpu")
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as error:
        raise ValueError(
            f"The module's forward fails on the first rows of X (shape {tuple(x.shape)}): "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}. Check that the "
            "module's input size fits X (for skspro's MLP: "
            f"estimator__module__input_dim={int(np.prod(X.shape[1:]))}) and that X has the shape the "
            "module expects (images as (n, channels, height, width))."
        ) from error
    finally:
        module.train(was_training)
    expected = (len(x), len(classes))
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"The module returns a {type(out).__name__}, not a tensor: its forward must return one tensor of "
            f"shape (n_rows, n_classes) = {expected} (a tuple's first element, for example)."
        )
    if tuple(out.shape) != expected:
        raise ValueError(
            f"The module returns outputs of shape {tuple(out.shape)} for {len(x)} rows, but y has "
            f"{len(classes)} classes ({np.asarray(classes)[:10].tolist()}): it must return "
            f"(n_rows, n_classes) = {expected}. Make its last layer produce {len(classes)} outputs (e.g. set "
            "estimator__module__n_classes)."
        )
    if isinstance(net.criterion_, torch.nn.NLLLoss):
        sums = out.double().sum(1)
        if bool((out < 0).any()) or not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
            raise ValueError(
                "The template's criterion is NLLLoss (skorch's default when none is set), for which skorch "
                "expects the module "
                "to return probabilities (a softmax), but it returns other values (e.g. logits or "
                "log-probabilities). Use criterion=torch.nn.CrossEntropyLoss (as skspro.default_estimator "
                "does) for a module that returns logits, or end the module with a Softmax."
            )


def check_copyable(net: NeuralNet) -> None:
    """Fail before any training if the module cannot be deep-copied (training and prediction copy it)."""
    try:
        copy.deepcopy(net.module_)
    except Exception as error:
        raise ValueError(
            f"The module cannot be copied with copy.deepcopy ({type(error).__name__}: {error}); skspro "
            "copies it to train vertices and to predict. Keep unpicklable objects (open files, locks, "
            "generators) out of the module's attributes."
        ) from error


def check_training_steps(net: NeuralNet, X: np.ndarray, y: np.ndarray) -> None:
    """Fail before any training if the template's training loader yields no
    minibatch on these rows (``drop_last`` with a batch larger than the data):
    skorch would then run every epoch without a step and return the networks
    untrained. Loaders whose length is unknown are not checked."""
    try:
        n_steps = training_steps(net, X, y)
    except TypeError:  # a sampler without __len__
        return
    if n_steps == 0:
        batch_size = net.get_params_for("iterator_train").get("batch_size", net.batch_size)
        raise ValueError(
            f"The template's training loader yields no minibatch on the {len(X)} training rows "
            f"(batch_size={batch_size} with iterator_train__drop_last=True drops them all), so no network "
            "would be trained. Set a batch_size of at most the number of training rows, or "
            "iterator_train__drop_last=False."
        )
