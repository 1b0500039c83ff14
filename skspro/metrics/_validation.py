"""Input checks shared by the calibration and uncertainty metrics.

Every public metric goes through :func:`check_targets_and_proba` (labels and
an ``(n_samples, n_classes)`` probability matrix) or
:func:`check_proba_networks` (per-network probabilities). Both return new
float64 arrays and never write to the caller's arrays. Error messages say
what was wrong, with the offending value, and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["CheckedProba", "check_targets_and_proba", "check_proba_networks", "check_n_bins"]


@dataclass(frozen=True)
class CheckedProba:
    """Validated metric inputs.

    Attributes
    ----------
    y_index : ndarray of shape (n_samples,)
        Column of ``proba`` that holds each sample's true label.
    proba : ndarray of shape (n_samples, n_classes)
        The probabilities as a new float64 array.
    classes : ndarray of shape (n_classes,)
        The label of each column.
    eps : float
        Machine epsilon of the caller's floating dtype (float64 for other
        dtypes); used to clip probabilities as ``sklearn.metrics.log_loss``
        does.
    """

    y_index: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    eps: float


def _floating_eps(dtype: np.dtype) -> float:
    return float(np.finfo(dtype if np.issubdtype(dtype, np.floating) else np.float64).eps)


def _sum_tolerance(eps: float) -> float:
    # Rows of float32 network outputs sum to 1 only up to a few float32 ulps; sqrt(eps) (3.5e-4 for
    # float32, as sklearn's log_loss uses) absorbs that, and 1e-6 is the floor for float64 input.
    return max(1e-6, float(np.sqrt(eps)))


def _check_probability_values(proba: np.ndarray, eps: float, name: str) -> None:
    """Finite, non-negative, rows summing to 1 along the last axis."""
    finite = np.isfinite(proba)
    if not finite.all():
        where = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name} contains NaN or infinite values (first at index {tuple(int(i) for i in where)}). "
            "Check the model's outputs (a diverged network gives NaN) or drop those samples."
        )
    if (proba < 0).any():
        where = np.unravel_index(np.argmin(proba), proba.shape)
        raise ValueError(
            f"{name} contains negative values (minimum {proba[where]:.4g} at index "
            f"{tuple(int(i) for i in where)}); probabilities must lie in [0, 1]. If these are logits "
            "or decision_function scores, pass predict_proba (softmax) outputs instead."
        )
    sums = proba.sum(axis=-1)
    deviation = np.abs(sums - 1.0)
    tolerance = _sum_tolerance(eps)
    if (deviation > tolerance).any():
        where = np.unravel_index(np.argmax(deviation), deviation.shape)
        raise ValueError(
            f"Probabilities in {name} must sum to 1 over classes (the last axis) within {tolerance:.1e}; "
            f"the row at index {tuple(int(i) for i in where)} sums to {sums[where]:.6g}. Pass "
            "predict_proba outputs, or normalise with p / p.sum(axis=-1, keepdims=True)."
        )


def _as_numeric_array(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool:
        array = array.astype(np.float64)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must hold numbers (probabilities); got an array of dtype {array.dtype}.")
    return array


def _check_y_true(y_true: ArrayLike, n_rows: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(
            f"y_true must be a 1-D array of labels; got shape {y.shape}. For one-hot targets pass "
            "y.argmax(axis=1) (with labels= naming the columns)."
        )
    if y.dtype.kind in "fc":
        missing = np.isnan(y)
    elif y.dtype.kind == "O":
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in y], dtype=bool)
    else:
        missing = np.zeros(len(y), dtype=bool)
    if missing.any():
        raise ValueError(
            f"y_true contains {int(missing.sum())} missing labels (NaN/None), first at index "
            f"{int(np.argmax(missing))}. Drop those samples before scoring."
        )
    if len(y) != n_rows:
        raise ValueError(
            f"y_true has {len(y)} labels but y_proba has {n_rows} rows; they must describe the same "
            "samples (e.g. y_test with model.predict_proba(X_test))."
        )
    return y


def _preview(values: np.ndarray, limit: int = 10) -> str:
    items = [v.item() if hasattr(v, "item") else v for v in values[:limit]]
    return repr(items)[:-1] + (", ...]" if len(values) > limit else "]")


def _column_index(y: np.ndarray, labels: ArrayLike | None, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Column of each label of ``y`` and the labels of the columns."""
    if labels is None:
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) != n_columns:
            raise ValueError(
                f"y_true contains {len(classes)} distinct labels {_preview(classes)} but y_proba has "
                f"{n_columns} columns, so the column of each label is unknown. Pass labels= with the label "
                "of each column in column order, e.g. labels=model.classes_ (needed whenever a class is "
                "missing from y_true, as in a small test split)."
            )
        return y_index.reshape(-1).astype(np.int64), classes
    classes = np.asarray(labels)
    if classes.ndim != 1:
        raise ValueError(f"labels must be 1-D (one label per column of y_proba); got shape {classes.shape}.")
    column_of = {}
    for column, label in enumerate(classes.tolist()):
        if label in column_of:
            raise ValueError(f"labels contains {label!r} twice; give each column of y_proba its own label.")
        column_of[label] = column
    if len(classes) != n_columns:
        raise ValueError(
            f"labels has {len(classes)} entries but y_proba has {n_columns} columns; give one label per "
            "column, in column order (model.classes_)."
        )
    unique, inverse = np.unique(y, return_inverse=True)
    unique_columns = np.array([column_of.get(label, -1) for label in unique.tolist()], dtype=np.int64)
    if (unique_columns < 0).any():
        raise ValueError(
            f"y_true contains labels {_preview(unique[unique_columns < 0])} that are not in "
            f"labels={_preview(classes)}. Pass the classes the model was fitted on (model.classes_) and "
            "check that y_true uses the same labels."
        )
    return unique_columns[inverse.reshape(-1)], classes


def check_targets_and_proba(y_true: ArrayLike, y_proba: ArrayLike, labels: ArrayLike | None) -> CheckedProba:
    """Validate labels and class probabilities for a metric.

    A 1-D ``y_proba`` is the probability of the positive class of a binary
    problem (the greater of the two labels, as in sklearn's scorers and
    ``log_loss``) and becomes the two columns ``[1 - p, p]``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, of any hashable type.
    y_proba : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities.
    labels : array-like of shape (n_classes,) or None
        The label of each column; ``None`` means the sorted distinct labels
        of ``y_true``, which must then number ``n_classes``.

    Returns
    -------
    CheckedProba
    """
    proba = _as_numeric_array(y_proba, "y_proba")
    eps = _floating_eps(proba.dtype)
    proba = proba.astype(np.float64)  # always a new array: the caller's is never written to
    if proba.ndim == 1:
        if np.isfinite(proba).all() and ((proba < 0) | (proba > 1)).any():
            raise ValueError(
                "A 1-D y_proba is read as the probability of the positive class and must lie in [0, 1]; "
                f"got values in [{proba.min():.4g}, {proba.max():.4g}]. Pass predict_proba outputs."
            )
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2:
        raise ValueError(
            f"y_proba must be 2-D, shaped (n_samples, n_classes); got shape {proba.shape}. Per-network "
            "probabilities (n_networks, n_samples, n_classes) must be averaged over axis 0 first "
            "(that is predict_proba)."
        )
    if proba.shape[0] == 0:
        raise ValueError("y_proba has no rows; a metric needs at least one sample.")
    _check_probability_values(proba, eps, "y_proba")
    y = _check_y_true(y_true, proba.shape[0])
    y_index, classes = _column_index(y, labels, proba.shape[1])
    return CheckedProba(y_index=y_index, proba=proba, classes=classes, eps=eps)


def check_proba_networks(proba_networks: ArrayLike) -> np.ndarray:
    """Validate per-network probabilities; return them as float64 (n_networks, n, C).

    A 2-D array ``(n_samples, n_classes)`` is read as a single network.
    """
    proba = _as_numeric_array(proba_networks, "proba_networks")
    eps = _floating_eps(proba.dtype)
    proba = proba.astype(np.float64)
    if proba.ndim == 2:
        proba = proba[np.newaxis]
    if proba.ndim != 3:
        raise ValueError(
            f"proba_networks must be shaped (n_networks, n_samples, n_classes), as returned by "
            f"predict_proba_networks; got shape {proba.shape}."
        )
    if proba.shape[0] == 0 or proba.shape[2] == 0:
        raise ValueError(f"proba_networks needs at least one network and one class; got shape {proba.shape}.")
    _check_probability_values(proba, eps, "proba_networks")
    return proba


def check_n_bins(n_bins: int, strategy: str) -> int:
    """Validate the binning parameters of the binned calibration metrics."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}.")
    if strategy not in ("uniform", "quantile"):
        raise ValueError(
            "strategy must be 'uniform' (equal-width bins) or 'quantile' (equal-mass bins); "
            f"got {strategy!r}."
        )
    return int(n_bins)
