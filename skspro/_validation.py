"""Validation-driven fitting: a held-out split that decides how long members
train and how far each simplex grows (``early_stopping=True``).

In the spirit of scikit-learn's ``MLPClassifier(early_stopping=True)``:

* a stratified fraction of the training rows is held out (seeded from
  ``random_state``); members and vertices train on the rest;
* a member stops when its held-out loss has not improved for
  ``n_iter_no_change`` epochs, and its best epoch's weights are kept
  (skorch's ``EarlyStopping(load_best=True)`` on a predefined split);
* a vertex is monitored the same way, on the held-out NLL of networks
  sampled from the simplex it completes, and its best epoch is kept;
* a trained vertex joins the simplex only if the held-out NLL of the
  simplex's prediction networks (the very networks ``predict_proba``
  averages, normalisation statistics included) is lower than without it;
  otherwise the simplex stops growing. So on the held-out split the
  prediction networks are never worse than the member alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from ._weights import weighted_inputs
from .simplex import SampledNetworks, forward_networks, make_generator, sample_simplex_weights

__all__ = [
    "SimplexValidation",
    "Validation",
    "early_stopping_callbacks",
    "networks_nll",
    "split_validation",
]


@dataclass(frozen=True)
class Validation:
    """The held-out rows (float32 inputs, encoded labels, weights or None) and the patience."""

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    n_iter_no_change: int

    def arrays(self) -> dict[str, np.ndarray | None]:
        """What a fit on this split depends on (for the keys of ``memory``)."""
        return {
            "X_valid": self.X,
            "y_valid": self.y,
            "sample_weight_valid": self.sample_weight,
            "n_iter_no_change": np.array([self.n_iter_no_change]),
        }

    def dataset(self) -> Dataset:
        """The split as skorch's ``predefined_split`` takes it."""
        return Dataset(weighted_inputs(self.X, self.sample_weight), self.y)


def split_validation(
    data,
    fraction: float,
    seed: int,
    n_iter_no_change: int,
    owner: str,
    *,
    template=None,
    setting: str = "",
    off: str = "set early_stopping=False",
    more: str = "another validation_fraction, ",
):
    """``data`` (a :class:`~skspro._inputs.FitData`) without its held-out
    rows, and the held-out :class:`Validation` (stratified).

    Refused before any training: a split without a row of every class on
    each side, and (given the members' ``template``) a template whose training
    loader has its own sampler, which would draw indices of rows that are
    gone. ``setting`` (what holds the rows out), ``off`` (how to turn it off)
    and ``more`` (other remedies) word the errors; the defaults are
    ``early_stopping=True``'s."""
    setting = setting or f"{owner}(early_stopping=True) holds out a stratified validation_fraction={fraction}"
    if template is not None:
        _check_no_sampler(template, setting, off)
    counts = np.bincount(data.y)
    n_valid = int(np.ceil(fraction * len(data.y)))
    problems = []
    if counts.min() < 2:
        problems.append(f"the rarest class has {counts.min()} row (every class needs 2)")
    if n_valid < len(counts):
        problems.append(f"{n_valid} held-out rows are fewer than the {len(counts)} classes")
    if len(data.y) - n_valid < len(counts):
        problems.append(f"{len(data.y) - n_valid} training rows are fewer than the {len(counts)} classes")
    if problems:
        raise ValueError(
            f"{setting} of the {len(data.y)} rows, with a row of every class on each side, but "
            f"{'; '.join(problems)}. Use more data, {more}or {off}."
        )
    rows = np.arange(len(data.y))
    train, valid = train_test_split(rows, test_size=n_valid, stratify=data.y, random_state=seed)
    train, valid = np.sort(train), np.sort(valid)
    weight = data.sample_weight
    kept = data._replace(
        X=data.X[train], y=data.y[train], sample_weight=None if weight is None else weight[train]
    )
    held_out = Validation(
        data.X[valid], data.y[valid], None if weight is None else weight[valid], n_iter_no_change
    )
    return kept, held_out


#: Template settings whose sampler draws indices of the rows passed to ``fit``.
_SAMPLERS = ("iterator_train__sampler", "iterator_train__batch_sampler")


def _check_no_sampler(template, setting: str, off: str) -> None:
    params = template.get_params(deep=False)
    given = [name for name in _SAMPLERS if params.get(name) is not None]
    if given:
        raise ValueError(
            f"{setting} of the rows passed to fit, but the template's {given[0]} draws indices of all "
            f"of them, so training on the rest would index rows that are not there. Remove the sampler "
            f"(sample_weight weights rows instead), or {off}."
        )


def _quiet(*args, **kwargs) -> None:
    """EarlyStopping's sink: the estimators' ``verbose`` governs printing."""


def early_stopping_callbacks(validation: Validation, monitor: str) -> list:
    """Stop after ``n_iter_no_change`` epochs without improvement of ``monitor``; keep the best epoch."""
    stopping = EarlyStopping(
        monitor=monitor, patience=validation.n_iter_no_change, threshold=0.0, sink=_quiet, load_best=True
    )
    return [("skspro_early_stopping", stopping)]


def member_settings(validation: Validation) -> dict:
    """Settings of a member's net for early stopping on the held-out split."""
    return {"train_split": predefined_split(validation.dataset())}


def held_out_nll(proba: np.ndarray, validation: Validation) -> float:
    """NLL of ``proba`` (n_rows, n_classes) on the held-out rows, weighted by their weights."""
    picked = np.clip(proba[np.arange(len(validation.y)), validation.y].astype(np.float64), 1e-12, None)
    return float(np.average(-np.log(picked), weights=validation.sample_weight))


def networks_nll(networks: SampledNetworks, validation: Validation) -> float:
    """Held-out NLL of the mean prediction of ``networks``."""
    return held_out_nll(networks.predict_proba(torch.as_tensor(validation.X)), validation)


class SimplexValidation(Callback):
    """Record ``valid_nll`` after every epoch of a vertex's training: the
    held-out NLL of the mean of ``n_networks`` networks of the simplex with
    the current new vertex (fixed barycentric points from ``seed``, the
    vertex module's running normalisation statistics)."""

    def __init__(self, validation: Validation, n_networks: int = 4, seed: int = 0) -> None:
        self.validation = validation
        self.n_networks = n_networks
        self.seed = seed

    def initialize(self):
        self.x_ = torch.as_tensor(self.validation.X)
        return self

    def on_epoch_end(self, net, **kwargs) -> None:
        module = net.module_
        weights = sample_simplex_weights(module.n_frozen + 1, self.n_networks, make_generator(self.seed))
        was_training = module.base.training
        module.base.eval()
        try:
            with torch.no_grad():
                total = forward_networks(
                    module.base,
                    module.network_params(weights),
                    module.forward_buffers(),
                    self.x_.to(module.vertex.device),
                    transform=net._get_predict_nonlinearity(),
                    reduce=True,
                )
        finally:
            module.base.train(was_training)
        proba = (total / self.n_networks).cpu().numpy()
        net.history.record("valid_nll", held_out_nll(proba, self.validation))
