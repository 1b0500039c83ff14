"""Saving and loading fitted estimators without pickle.

A file holds tensors and plain data only (JSON metadata, lists, numbers):
``torch.save`` writes it, ``torch.load(weights_only=True)`` reads it, which
refuses any other object, so loading a file never runs code from it. The
architecture is not in the file: you pass an unfitted estimator with the
same skorch template (module class and settings) to :func:`load`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone

from . import __version__
from ._base import BaseSimplexEnsemble
from ._members import Member, seeded_torch
from .simplex import StackedVertices

__all__ = ["save", "load", "FORMAT_VERSION"]

#: Version of the file layout; :func:`load` refuses files of a newer one.
FORMAT_VERSION = 1
_MAGIC = "skspro-estimator"
_CONNECTOR_ARRAYS = (
    "log_volumes_",
    "volumes_",
    "relative_heights_",
    "start_relative_heights_",
    "simplex_train_loss_",
    "simplex_train_accuracy_",
    "mode_train_loss_",
    "mode_train_accuracy_",
)


def _plain(value):
    """JSON-able form of a parameter value (None for anything else)."""
    try:
        json.dumps(value)
    except TypeError:
        return None
    return value


def _labels(values: np.ndarray) -> dict:
    return {"dtype": str(values.dtype), "values": values.tolist()}


def save(estimator: BaseSimplexEnsemble, path: str | os.PathLike) -> None:
    """Write a fitted skspro estimator's weights and configuration to ``path``.

    Parameters
    ----------
    estimator : ESPROClassifier, DeepEnsembleClassifier or SPROConnector
        A fitted estimator.
    path : str or path-like
        The file to write (written to a temporary name first, then renamed,
        so an interrupted save never leaves a half-written file).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skspro import DeepEnsembleClassifier, default_estimator, load, save
    >>> X, y = load_iris(return_X_y=True)
    >>> template = default_estimator().set_params(max_epochs=2)
    >>> model = DeepEnsembleClassifier(template, n_members=2, random_state=0).fit(X, y)
    >>> path = tempfile.mkdtemp() + "/model.pt"
    >>> save(model, path)
    >>> restored = load(path, DeepEnsembleClassifier(template))
    >>> bool(np.array_equal(restored.predict_proba(X), model.predict_proba(X)))
    True
    """
    if not isinstance(estimator, BaseSimplexEnsemble) or not hasattr(estimator, "_members"):
        raise ValueError(f"save needs a fitted skspro estimator, got {type(estimator).__name__}.")
    params = {k: _plain(v) for k, v in estimator.get_params(deep=False).items() if k != "estimator"}
    meta = {
        "magic": _MAGIC,
        "format_version": FORMAT_VERSION,
        "skspro_version": __version__,
        "estimator": type(estimator).__name__,
        "params": params,
        "classes": _labels(np.asarray(estimator.classes_)),
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": getattr(estimator, "feature_names_in_", np.array([])).tolist(),
        "input_shape": list(estimator._input_shape),
        "n_networks": int(estimator.n_networks_),
    }
    members = []
    for member in estimator._members:
        members.append(
            {
                "module_state": {k: v.detach().cpu() for k, v in member.net.module_.state_dict().items()},
                "simplex": {k: v.cpu() for k, v in member.simplex.params.items()},
                "sample_weights": member.sample_weights.cpu(),
                "norm_buffers": {k: v.cpu() for k, v in member.norm_buffers.items()},
                "log_volumes": list(member.log_volumes),
                "seed": int(member.seed),
                "fit_time": float(member.fit_time),
                "vertex_times": list(member.vertex_times),
            }
        )
    payload = {"meta": json.dumps(meta), "members": members}
    if type(estimator).__name__ == "SPROConnector":
        payload["modes"] = [
            {k: v.detach().cpu() for k, v in net.module_.state_dict().items()}
            for net in estimator.estimators_
        ]
        payload["connector"] = json.dumps(
            {
                **{name: getattr(estimator, name).tolist() for name in _CONNECTOR_ARRAYS},
                "simplices": [list(s) for s in estimator.simplices_],
                "n_connectors": int(estimator.n_connectors_),
                "connector_seed": int(estimator._connector_seed),
                "sample_groups": estimator._sample_groups.tolist(),
            }
        )
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def _read(path: str | os.PathLike) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(
            f"{os.fspath(path)!r} is not a skspro weights file (or it holds objects other than tensors and "
            f"plain data, which are refused without running them): {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from None
    try:
        meta = json.loads(payload["meta"])
        assert meta["magic"] == _MAGIC
    except Exception:
        raise ValueError(f"{os.fspath(path)!r} is not a skspro weights file (no skspro header).") from None
    if meta["format_version"] > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written by skspro {meta['skspro_version']} in file format "
            f"{meta['format_version']}; this skspro ({__version__}) reads format {FORMAT_VERSION} and older. "
            "Upgrade skspro to load it."
        )
    return payload | {"meta": meta}


def load(path: str | os.PathLike, estimator: BaseSimplexEnsemble) -> BaseSimplexEnsemble:
    """Rebuild a fitted estimator from a file written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
    estimator : ESPROClassifier, DeepEnsembleClassifier or SPROConnector
        An unfitted estimator of the saved class whose ``estimator`` is the
        same skorch template as at fit (or None for the default MLP; for an
        SPROConnector fitted on frozen modes, pass their template). It is
        cloned, not modified; the other parameters are taken from the file.

    Returns
    -------
    estimator
        Fitted, predicting as the saved one did. Training histories are not
        stored in the file.

    Raises
    ------
    ValueError
        For a file that is not a skspro weights file (including any file
        that holds pickled objects: it is refused without running them), a
        file from a newer format, or an estimator of another class.
    """
    payload = _read(path)
    meta = payload["meta"]
    if type(estimator).__name__ != meta["estimator"]:
        raise ValueError(
            f"The file holds a {meta['estimator']}; pass an unfitted {meta['estimator']} to load, "
            f"got {type(estimator).__name__}."
        )
    model = clone(estimator)
    model.set_params(**{k: v for k, v in meta["params"].items() if v is not None and k in model.get_params()})
    classes = np.asarray(meta["classes"]["values"], dtype=meta["classes"]["dtype"])
    input_shape = tuple(meta["input_shape"])
    template = model._template_for(input_shape, len(classes)).set_params(device="cpu")

    def fresh_net(state: dict):
        net = clone(template)
        with seeded_torch(0):
            net.initialize()
        net.module_.load_state_dict(state)
        return net

    connector = json.loads(payload["connector"]) if "connector" in payload else None
    if connector is not None:
        modes = [fresh_net(state) for state in payload["modes"]]
    members = []
    for saved in payload["members"]:
        net = modes[0] if connector is not None else fresh_net(saved["module_state"])
        members.append(
            Member(
                net=net,
                simplex=StackedVertices(dict(saved["simplex"])),
                sample_weights=saved["sample_weights"],
                norm_buffers=dict(saved["norm_buffers"]),
                log_volumes=list(saved["log_volumes"]),
                vertex_histories=[],
                fit_time=saved["fit_time"],
                vertex_times=list(saved["vertex_times"]),
                seed=saved["seed"],
            )
        )
    model.classes_ = classes
    model.n_features_in_ = meta["n_features_in"]
    if meta["feature_names_in"]:
        model.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
    model._input_shape = input_shape
    if connector is None:
        model._set_fitted_members(members)
        model.vertex_histories_ = [[] for _ in members]
    else:
        model.estimators_ = modes
        model.vertices_ = members[0].simplex
        model._set_prediction_members(members)
        model.sample_weights_ = members[0].sample_weights.numpy()
        for name in _CONNECTOR_ARRAYS:
            setattr(model, name, np.asarray(connector[name], dtype=np.float64))
        model.simplices_ = [tuple(s) for s in connector["simplices"]]
        model.n_connectors_ = connector["n_connectors"]
        model._connector_seed = connector["connector_seed"]
        model._sample_groups = np.asarray(connector["sample_groups"])
        model.connector_histories_ = []
    model.fit_time_ = float("nan")
    return model
