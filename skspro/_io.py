"""Saving and loading fitted estimators without pickle.

A file holds tensors and plain data only (JSON metadata, lists, numbers):
``torch.save`` writes it, ``torch.load(weights_only=True)`` reads it, which
refuses any other object, so loading a file never runs code from it. The
architecture is not in the file: you pass an unfitted estimator with the
same skorch template (module class and settings) to :func:`load`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone

from . import __version__
from ._composition import is_composition, load_composition, save_composition
from ._composition import skspro_classes as skspro_classes
from ._file_checks import (
    check_archive,
    check_meta,
    check_payload,
    check_shapes,
    check_sizes,
    check_template_settings,
    connector_fields,
    fitted_fields,
    label_array,
    module_shapes,
    template_settings,
    template_shapes,
)
from ._inputs import member_template
from ._members import Member, seeded_torch
from .simplex import StackedVertices

__all__ = ["save", "load", "FORMAT_VERSION"]

#: Version of the file layout; :func:`load` refuses files of a newer one.
FORMAT_VERSION = 1
_MAGIC = "skspro-estimator"


def _is_plain(value) -> bool:
    """Whether JSON stores ``value`` as it is (not, e.g., a dict keyed by numbers)."""
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


def own_params(estimator) -> dict:
    """An estimator's own parameters as a file records them: ``params``, the
    values JSON holds as they are, and ``unstored_params``, the names of the
    others (load takes those from the estimator it is given)."""
    own = {k: v for k, v in estimator.get_params(deep=False).items() if k != "estimator"}
    params = {k: v for k, v in own.items() if _is_plain(v)}
    return {"params": params, "unstored_params": sorted(set(own) - set(params))}


def _labels(values: np.ndarray) -> dict:
    if values.dtype.kind == "U":  # no wider than the labels need (a file may not declare more)
        values = values.astype(f"U{max(1, max(len(v) for v in values.tolist()))}")
    return {"dtype": str(values.dtype), "values": values.tolist()}


def save(estimator: BaseEstimator, path: str | os.PathLike) -> None:
    """Write a fitted skspro estimator, or a composition holding some, to ``path``.

    Parameters
    ----------
    estimator : ESPROClassifier, DeepEnsembleClassifier, SPROConnector or a composition
        A fitted skspro estimator, or a fitted scikit-learn composition
        (``Pipeline``, ``ColumnTransformer``, ``VotingClassifier``,
        ``CalibratedClassifierCV`` ...) with skspro estimators at any step.
        A composition's other parts are written with :mod:`skops.io`, the
        skspro estimators in skspro's weights format
        (:mod:`skspro._composition`); no part is pickled.
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

    A whole pipeline, in one line each way:

    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> pipeline = make_pipeline(StandardScaler(), DeepEnsembleClassifier(template, n_members=2))
    >>> save(pipeline.fit(X, y), tempfile.mkdtemp() + "/pipeline.skspro")
    """
    if not hasattr(estimator, "_file_members"):
        return save_composition(estimator, Path(path))
    if not hasattr(estimator, "networks_"):
        raise ValueError(f"save needs a fitted estimator; this {type(estimator).__name__} is not fitted.")
    payload = {
        "meta": json.dumps(_meta(estimator)),
        "members": [_member_record(m) for m in estimator._file_members()],
    }
    extra = estimator._file_extra()
    if extra is not None:  # the connector's modes and curves
        payload["modes"] = [_state(net) for net in extra["modes"]]
        payload["connector"] = json.dumps(extra["fields"])
    _write_atomically(Path(path), lambda file: torch.save(payload, file))


def _write_atomically(path: Path, write, durable: bool = True) -> None:
    """Write to a fresh temporary file beside ``path`` and move it into place.

    The temporary name is unique and created exclusively (``mkstemp``:
    ``O_CREAT | O_EXCL``, so it never follows a planted symlink, and two
    savers never share it); the data is flushed to disk before the atomic
    ``os.replace``, and the temporary file is removed on any failure or
    interrupt. Concurrent saves to one path all succeed; the last one wins.
    """
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            if durable:  # a cache entry that a crash loses is only retrained (skspro._memory)
                os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        if isinstance(error.__context__, KeyboardInterrupt) and not isinstance(error, KeyboardInterrupt):
            # torch's writer fails while closing on Ctrl-C: the interrupt is what happened
            raise error.__context__ from None
        raise


def _state(net) -> dict:
    return {k: v.detach().cpu().contiguous() for k, v in net.module_.state_dict().items()}


def _meta(estimator) -> dict:
    return {
        "magic": _MAGIC,
        "format_version": FORMAT_VERSION,
        "skspro_version": __version__,
        "estimator": type(estimator).__name__,
        **own_params(estimator),
        "classes": _labels(np.asarray(estimator.classes_)),
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": getattr(estimator, "feature_names_in_", np.array([])).tolist(),
        "input_shape": list(estimator._input_shape),
        "n_networks": int(estimator.n_networks_),
        "template": template_settings(estimator._file_members()[0].net),
        "fitted": estimator._file_fitted(),  # fitted attributes beyond the networks; older readers skip it
    }


def _member_record(member: Member) -> dict:
    return {
        "module_state": _state(member.net),
        "simplex": {k: v.cpu() for k, v in member.simplex.params.items()},
        "sample_weights": member.sample_weights.cpu(),
        "norm_buffers": {k: v.cpu() for k, v in member.norm_buffers.items()},
        "log_volumes": list(member.log_volumes),
        "seed": int(member.seed),
        "fit_time": float(member.fit_time),
        "vertex_times": list(member.vertex_times),
    }


def _read(path: str | os.PathLike) -> dict:
    """The checked payload of a file (see :mod:`skspro._file_checks`), its header parsed."""
    check_archive(path)
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of any refused file; the
            # refusal below is what the user should read.
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(
            f"{os.fspath(path)!r} is not a skspro weights file (or it holds objects other than tensors and "
            f"plain data, which are refused without running them): {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from None
    try:
        meta = json.loads(payload["meta"])
        is_skspro = isinstance(meta, dict) and meta.get("magic") == _MAGIC
    except Exception:  # not a dict, no "meta", not JSON
        is_skspro = False
    if not is_skspro:
        raise ValueError(f"{os.fspath(path)!r} is not a skspro weights file (no skspro header).")
    version = meta.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written by skspro {meta.get('skspro_version')} in file format "
            f"{version}; this skspro ({__version__}) reads format {FORMAT_VERSION} and older. "
            "Upgrade skspro to load it."
        )
    check_meta(path, meta)
    check_payload(path, payload)
    return payload | {"meta": meta}


#: Parameters added after files were first written, with the value every
#: model of an older file was fitted with (its defaults may differ now).
_ADDED_PARAMS = {"ESPROClassifier": {"vertex_weight_decay": 0.0}}


def _model_from_meta(path, meta: dict, estimator: BaseEstimator | None) -> BaseEstimator:
    """A clone of ``estimator`` (default: the file's skspro class, default
    template) with the file's parameters: only its own plain
    hyper-parameters (never the template's), validated as fit validates them."""
    if estimator is None:
        classes = skspro_classes()
        if meta["estimator"] not in classes:
            raise ValueError(f"{os.fspath(path)!r} holds a {meta['estimator']!r}, not a skspro estimator.")
        estimator = classes[meta["estimator"]]()
    if type(estimator).__name__ != meta["estimator"]:
        raise ValueError(
            f"The file holds an estimator of class {meta['estimator']!r}; pass an unfitted skspro "
            f"estimator of that class to load, "
            f"got {type(estimator).__name__}."
        )
    model = clone(estimator)
    allowed = set(model.get_params(deep=False)) - {"estimator"}
    unknown = sorted(set(meta["params"]) - allowed)
    if unknown:
        raise ValueError(
            f"{os.fspath(path)!r} stores parameters {unknown} that {meta['estimator']} does not have."
        )
    unstored = set(meta.get("unstored_params", ()))
    added = _ADDED_PARAMS.get(meta["estimator"], {})
    model.set_params(**{k: v for k, v in added.items() if k not in meta["params"] and k not in unstored})
    if "unstored_params" in meta:  # every stored value, None included, is the fitted model's
        model.set_params(**meta["params"])
    else:  # files of 0.1.0 wrote None for values JSON could not hold: the estimator's are kept
        model.set_params(**{k: v for k, v in meta["params"].items() if v is not None})
    try:
        model._validate_params()
    except ValueError as error:
        raise ValueError(f"{os.fspath(path)!r} stores invalid parameters: {error}") from None
    return model


def load(
    path: str | os.PathLike,
    estimator: BaseEstimator | list | None = None,
    *,
    trusted: list[str] | None = None,
) -> BaseEstimator:
    """Rebuild a fitted estimator (or composition) from a file written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
    estimator : ESPROClassifier, DeepEnsembleClassifier, SPROConnector, list or None, default=None
        The architecture is not in the file: pass an unfitted estimator of
        the saved class whose ``estimator`` is the same skorch template as at
        fit (for an SPROConnector fitted on frozen modes, their template). It
        is cloned, not modified; the other parameters are taken from the
        file. ``None``: the saved class with the default template
        (:func:`skspro.default_estimator`). For a composition file, a skspro
        estimator gives the template of every skspro estimator in it, a
        list one per skspro estimator (in the order of
        ``skspro._composition.skspro_estimators(composition)``).
    trusted : list of str, optional
        For a composition file: types beyond scikit-learn's, numpy's and
        skspro's that :mod:`skops.io` may build (e.g. your own transformer
        class, ``"mypackage.MyTransformer"``). A file holding any other type
        is refused, naming the types, and nothing in it is run.

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
        file from a newer format, an estimator of another class, a template
        that does not fit the stored weights (naming the parameter), or
        untrusted types in a composition.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {os.fspath(path)!r}.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{os.fspath(path)!r} is a directory; load takes the file save wrote.")
    if is_composition(path):
        return load_composition(path, estimator, trusted)
    if isinstance(estimator, list):
        raise ValueError("A list of estimators is for composition files; this file holds one estimator.")
    payload = _read(path)
    meta = payload["meta"]
    model = _model_from_meta(path, meta, estimator)
    classes = label_array(path, meta["classes"])
    input_shape = tuple(meta["input_shape"])
    template = member_template(model.estimator, input_shape, len(classes), type(model).__name__)
    check_template_settings(path, meta.get("template"), template)
    check_sizes(path, model, payload)
    shapes = template_shapes(template)
    if shapes is not None:  # checked before any network is built
        check_shapes(path, payload, shapes, meta["n_networks"])
    fresh_net = _net_factory(template)
    members = [_member(saved, fresh_net) for saved in payload["members"]]
    if shapes is None:
        check_shapes(path, payload, module_shapes(members[0].net.module_), meta["n_networks"])
    given = meta["params"].get("vertex_weight_decay")
    extra = {"fitted": fitted_fields(path, meta.get("fitted", {}), given)}  # files before it hold none
    if "connector" in payload:  # the connector's modes and curves
        modes = [fresh_net(state) for state in payload["modes"]]
        extra.update(modes=modes, fields=connector_fields(path, payload))
    vars(model).update(
        estimator_=template, classes_=classes, n_features_in_=meta["n_features_in"], _input_shape=input_shape
    )
    if meta["feature_names_in"]:
        model.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
    model._restore(members, extra)
    model.fit_time_ = float("nan")
    return model


def _net_factory(template):
    """A function that builds a fitted net of the (checked) template from a module state."""
    template = clone(template).set_params(device="cpu")

    def fresh_net(state: dict):
        net = clone(template)
        with seeded_torch(0):
            net.initialize()
        net.module_.load_state_dict(state)
        return net

    return fresh_net


def _member(saved: dict, fresh_net) -> Member:
    return Member(
        net=fresh_net(saved["module_state"]),
        simplex=StackedVertices(dict(saved["simplex"])),
        sample_weights=saved["sample_weights"],
        norm_buffers=dict(saved["norm_buffers"]),
        log_volumes=tuple(saved["log_volumes"]),
        fit_time=saved["fit_time"],
        vertex_times=tuple(saved["vertex_times"]),
        seed=saved["seed"],
    )
