"""Weighted training: ``sample_weight`` and ``class_weight`` in skorch's loop.

``class_weight`` becomes the criterion's per-class ``weight`` (torch's own
semantics: a minibatch's loss is ``sum_i c[y_i] l_i / sum_i c[y_i]``).
``sample_weight`` rides with the inputs, as skorch recommends (``X`` a dict
holding the inputs and the weights): a net that reads it strips the weights
before the module's forward and uses them in the loss, so the user's
module never sees them. A minibatch's loss is then

    sum_i s_i c[y_i] l_i / sum_i s_i c[y_i]

(``c`` = 1 without class weights; a plain sum for ``reduction="sum"``),
the per-minibatch weighted mean that scikit-learn's ``MLPClassifier`` uses.
Weights that are all equal give exactly the unweighted fit (they are
dropped at validation).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import _check_sample_weight
from skorch import NeuralNet

__all__ = [
    "RowWeightsMixin",
    "check_class_weight_support",
    "check_sample_weight_support",
    "class_weights",
    "row_weighted",
    "split_inputs",
    "validate_sample_weight",
    "weighted_inputs",
]

_X, _WEIGHT = "skspro_X", "skspro_sample_weight"


def validate_sample_weight(sample_weight, X: np.ndarray) -> np.ndarray | None:
    """``sample_weight`` checked as scikit-learn does (non-negative, finite,
    one per row, not all zero), as float32; None when absent or all equal
    (which weights nothing)."""
    if sample_weight is None:
        return None
    weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if np.all(weight == weight[0]):
        return None
    return weight.astype(np.float32)


def class_weights(class_weight, classes: np.ndarray, y_encoded: np.ndarray) -> np.ndarray | None:
    """Per-class weights in the order of ``classes`` (None for ``class_weight=None``)."""
    if class_weight is None:
        return None
    if isinstance(class_weight, Mapping):
        unknown = [key for key in class_weight if key not in set(classes.tolist())]
        if unknown:
            raise ValueError(
                f"class_weight has keys {unknown[:10]} that are not classes of y "
                f"({classes[:10].tolist()}). Use the labels of y as keys."
            )
    weights = compute_class_weight(class_weight, classes=classes, y=classes[y_encoded])
    return weights.astype(np.float32)


def weighted_inputs(X, sample_weight):
    """What a weighted net is fitted on (or a batch's inputs with their
    weights): ``X`` itself, or ``X`` with its weights."""
    return X if sample_weight is None else {_X: X, _WEIGHT: sample_weight}


def split_inputs(X) -> tuple[object, torch.Tensor | np.ndarray | None]:
    """The inputs and the weights of a (batch of) :func:`weighted_inputs`."""
    if isinstance(X, Mapping) and _WEIGHT in X:
        return X[_X], X[_WEIGHT]
    return X, None


@contextlib.contextmanager
def _per_row(criterion: torch.nn.Module) -> Iterator[str]:
    reduction = criterion.reduction
    criterion.reduction = "none"
    try:
        yield reduction
    finally:
        criterion.reduction = reduction


class RowWeightsMixin:
    """``infer`` and ``get_loss`` of a skorch net fitted on :func:`weighted_inputs`.

    Mixed in before the net's own class; without weights every call is the
    net's own.
    """

    def infer(self, x, **fit_params):
        x, _ = split_inputs(x)
        return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        _, weight = split_inputs(X)
        if weight is None:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        criterion = self.criterion_
        with _per_row(criterion) as reduction:
            losses = super().get_loss(y_pred, y_true, X=X, training=training)
        weight = torch.as_tensor(weight, device=losses.device).to(losses.dtype)
        if losses.shape != weight.shape:
            raise ValueError(
                f"sample_weight needs a criterion that gives one loss per row with reduction='none'; "
                f"{type(criterion).__name__} gave shape {tuple(losses.shape)} for {len(weight)} rows."
            )
        total = (weight * losses).sum()
        if reduction == "sum":
            return total
        norm = weight * _class_weight_of_rows(criterion, y_true, weight)
        return total / norm.sum().clamp_min(torch.finfo(losses.dtype).tiny)


def _class_weight_of_rows(criterion, y_true, like: torch.Tensor) -> torch.Tensor | float:
    class_weight = getattr(criterion, "weight", None)
    if class_weight is None:
        return 1.0
    return class_weight.to(like)[torch.as_tensor(y_true, device=like.device).long()]


def row_weights(criterion, y: torch.Tensor, weight) -> torch.Tensor | None:
    """Each row's share of a minibatch's mean loss, unnormalised
    (``s_i c[y_i]``), or None when every row counts the same."""
    class_weight = getattr(criterion, "weight", None)
    if weight is None and class_weight is None:
        return None
    like = torch.ones(len(y), device=y.device) if weight is None else torch.as_tensor(weight, device=y.device)
    return like.float() * _class_weight_of_rows(criterion, y, like.float())


@functools.cache
def _weighted_class(base: type) -> type:
    if issubclass(base, RowWeightsMixin):
        return base
    return type(f"RowWeighted{base.__name__}", (RowWeightsMixin, base), {"__module__": __name__})


@contextlib.contextmanager
def row_weighted(net: NeuralNet, X: np.ndarray, sample_weight: np.ndarray | None) -> Iterator[object]:
    """Fit ``net`` (a private clone) on weighted rows inside the block.

    Yields what to pass to ``net.fit`` as ``X``. For the duration of the
    block the net is of a subclass of its own class with
    :class:`RowWeightsMixin`; it is of its own class again afterwards, so the
    fitted net is the user's kind of net, and pickles.
    """
    if sample_weight is None:
        yield X
        return
    base = type(net)
    net.__class__ = _weighted_class(base)
    try:
        yield weighted_inputs(X, sample_weight)
    finally:
        net.__class__ = base


def check_sample_weight_support(net: NeuralNet) -> None:
    """Fail before training if an initialised net's criterion cannot weight rows."""
    reduction = getattr(net.criterion_, "reduction", None)
    if reduction not in ("mean", "sum"):
        raise ValueError(
            f"sample_weight needs a criterion with reduction='mean' or 'sum' that gives one loss per row "
            f"with reduction='none' (torch.nn losses such as CrossEntropyLoss); "
            f"{type(net.criterion_).__name__} "
            + (
                f"has reduction={reduction!r}."
                if hasattr(net.criterion_, "reduction")
                else "has no reduction."
            )
        )


def check_class_weight_support(criterion: torch.nn.Module | None, expected: np.ndarray, name: str) -> None:
    """Fail before training if a template's criterion (None: it could not be
    built with ``weight=``) did not take the class weights."""
    weight = getattr(criterion, "weight", None)
    if not isinstance(weight, torch.Tensor) or not np.allclose(weight.cpu().numpy(), expected):
        raise ValueError(
            f"class_weight needs a criterion that takes per-class weights as weight= (such as "
            f"torch.nn.CrossEntropyLoss or NLLLoss, passed as a class); {name} "
            "did not take them. Pass the criterion class, or weight the classes in your criterion and "
            "leave class_weight=None."
        )
