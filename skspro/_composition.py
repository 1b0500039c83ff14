"""Saving and loading compositions (Pipelines, meta-estimators) that hold
skspro estimators, without pickle.

A composition file is a zip of stored records:

* ``composition.json``: the header (format, versions, one entry per skspro
  estimator: its class and plain parameters, and whether it is fitted);
* ``composition.skops``: the composition written by :mod:`skops.io`, with
  every skspro estimator replaced by a :class:`ModelSlot`. skops refuses
  to load any type it does not trust (scikit-learn's own, numpy's and
  skspro's slot are trusted; anything else only when the caller names it
  in ``trusted``), so loading runs no code from the file;
* ``model_<i>.skspro``: each fitted skspro estimator in skspro's weights
  format (:mod:`skspro._io`), loaded with all of its checks.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._metadata_requests import MetadataRequest
from skorch import NeuralNet

from . import __version__
from ._file_checks import check_archive

__all__ = [
    "ModelSlot",
    "is_composition",
    "load_composition",
    "save_composition",
    "skspro_classes",
    "skspro_estimators",
]

_MAGIC = "skspro-composition"
FORMAT_VERSION = 1
_HEADER, _SKOPS = "composition.json", "composition.skops"


class ModelSlot:
    """Where a skspro estimator sits in a stored composition (its index in the file)."""

    def __init__(self, index: int = 0) -> None:
        self.index = index

    def __setstate__(self, state: dict) -> None:
        index = state.get("index") if isinstance(state, dict) else None
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError("a skspro model slot in the file has no integer index.")
        self.index = index


def _is_skspro(obj) -> bool:
    return isinstance(obj, BaseEstimator) and type(obj).__module__.startswith("skspro.")


def _children(obj) -> Iterator[object]:
    if isinstance(obj, dict):
        yield from obj.values()
    elif isinstance(obj, list | tuple | set | frozenset):
        yield from obj
    elif not isinstance(obj, type | np.ndarray | torch.Tensor | NeuralNet) and hasattr(obj, "__dict__"):
        yield from vars(obj).values()


def _find(obj, kind, *, inside: bool = False) -> list:
    """Every object of ``kind`` reachable from ``obj``, once each, in a fixed order
    (the attribute and item order of the objects that hold them); with
    ``inside``, also those inside a found one."""
    found, seen, stack = [], set(), [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(item))
        if kind(item):
            found.append(item)
            if not inside:
                continue
        stack.extend(reversed(list(_children(item))))
    return found


def skspro_estimators(obj) -> list[BaseEstimator]:
    """The skspro estimators inside a composition, fitted copies included."""
    return _find(obj, _is_skspro)


# Metadata-routing requests (``set_fit_request(...)``) are objects skops
# cannot write; they are stored as the plain dicts they serialise to and
# set again through the public ``set_<method>_request`` at load.
_REQUESTS, _PLAIN = "_metadata_request", "skspro_metadata_request"


def _has_requests(item) -> bool:
    return isinstance(getattr(item, "__dict__", {}).get(_REQUESTS), MetadataRequest)


def _plain_requests(shell) -> None:
    for item in _find(shell, _has_requests, inside=True):
        vars(item)[_REQUESTS] = {_PLAIN: item._metadata_request._serialize()}


def _restore_requests(path, shell) -> None:
    def stored(item) -> bool:
        return isinstance(getattr(item, "__dict__", {}).get(_REQUESTS), dict)

    for item in _find(shell, stored, inside=True):
        _set_requests(path, item, vars(item).pop(_REQUESTS).get(_PLAIN))


def _set_requests(path, item, requests) -> None:
    """Set a ``_serialize()``-d MetadataRequest on ``item`` through its public setters."""
    if requests is None:
        return
    valid = isinstance(requests, dict) and all(
        isinstance(params, dict) and all(isinstance(v, bool | str | type(None)) for v in params.values())
        for params in requests.values()
    )
    if not valid:
        raise _refuse(path, f"the routing requests of a {type(item).__name__} are not plain values.")
    with sklearn.config_context(enable_metadata_routing=True):
        for method, params in requests.items():
            chosen = {name: value for name, value in params.items() if value is not None}
            setter = getattr(item, f"set_{method}_request", None)
            if chosen and setter is not None:
                setter(**chosen)


def save_composition(obj, path: Path) -> None:
    """Write a composition holding skspro estimators (see the module docstring)."""
    import skops.io

    from ._io import _write_atomically, own_params, save

    models = skspro_estimators(obj)
    if not models:
        raise ValueError(
            f"save needs a fitted skspro estimator or a composition (Pipeline, meta-estimator) that holds "
            f"one; {type(obj).__name__} holds none. For other scikit-learn objects use skops.io.dump."
        )
    memo = {id(model): ModelSlot(i) for i, model in enumerate(models)}
    memo[id(memo)] = list(models)  # deepcopy's keep-alive list: the models are not copied
    shell = copy.deepcopy(obj, memo)
    _plain_requests(shell)
    try:
        shell_bytes = skops.io.dumps(shell)
    except Exception as error:
        raise ValueError(
            f"skops cannot store a part of this {type(obj).__name__} ({type(error).__name__}: {error}); "
            "save stores scikit-learn compositions of skspro estimators and objects skops can write."
        ) from error
    entries = []
    with tempfile.TemporaryDirectory() as folder:
        blobs = {}
        for i, model in enumerate(models):
            fitted = hasattr(model, "networks_")
            entry = {"estimator": type(model).__name__, **own_params(model), "fitted": fitted}
            if _has_requests(model):
                entry["requests"] = model._metadata_request._serialize()
            entries.append(entry)
            if fitted:
                save(model, Path(folder) / "model")
                blobs[f"model_{i}.skspro"] = (Path(folder) / "model").read_bytes()
        header = {
            "magic": _MAGIC,
            "format_version": FORMAT_VERSION,
            "skspro_version": __version__,
            "composition": type(obj).__name__,
            "models": entries,
        }
        records = {_HEADER: json.dumps(header).encode(), _SKOPS: shell_bytes, **blobs}
        _write_atomically(path, _zip_writer(records))


def _zip_writer(records: dict[str, bytes]):
    def write(file) -> None:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in records.items():
                archive.writestr(name, data)

    return write


def is_composition(path) -> bool:
    """Whether ``path`` is a composition file (a zip whose first record is the header)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except Exception:
        return False
    return bool(names) and names[0] == _HEADER


def _refuse(path, message: str) -> ValueError:
    return ValueError(f"{os.fspath(path)!r} is not a valid skspro composition file: {message}")


def _read_header(path, archive: zipfile.ZipFile) -> dict:
    try:
        header = json.loads(archive.read(_HEADER))
    except Exception:
        raise _refuse(path, "its header is not JSON.") from None
    if not isinstance(header, dict) or header.get("magic") != _MAGIC:
        raise _refuse(path, "no skspro header.")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _refuse(path, f"its format_version {version!r} is not a format number.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written by skspro {header.get('skspro_version')} in composition "
            f"format {version}; this skspro ({__version__}) reads format {FORMAT_VERSION}. Upgrade skspro "
            "to load it."
        )
    entries = header.get("models")
    if not isinstance(entries, list) or not entries:
        raise _refuse(path, "it lists no skspro estimator.")
    for i, entry in enumerate(entries):
        if not (
            isinstance(entry, dict)
            and entry.get("estimator") in skspro_classes()
            and isinstance(entry.get("params"), dict)
            and isinstance(entry.get("unstored_params"), list)
            and isinstance(entry.get("fitted"), bool)
        ):
            raise _refuse(path, f"its entry for model {i} is not a skspro estimator's record.")
    return header


def skspro_classes() -> dict[str, type]:
    from . import DeepEnsembleClassifier, ESPROClassifier, SPROConnector

    return {cls.__name__: cls for cls in (ESPROClassifier, DeepEnsembleClassifier, SPROConnector)}


def _templates(estimator, entries: list) -> list:
    """The skorch template (or None) of each stored skspro estimator."""
    n_models = len(entries)
    items = estimator if isinstance(estimator, list) else [estimator] * n_models
    if len(items) != n_models:
        held = ", ".join(
            f"{i}: {e['estimator']} ({'fitted' if e['fitted'] else 'unfitted prototype'})"
            for i, e in enumerate(entries)
        )
        raise ValueError(
            f"load got a list of {len(items)} estimators for a file of {n_models} skspro estimators ({held}; "
            "meta-estimators hold unfitted prototypes beside their fitted copies). Pass one estimator per "
            "entry in this order, or a single estimator whose template serves them all."
        )
    templates = []
    for item in items:
        if item is not None and not _is_skspro(item):
            raise ValueError(
                "For a composition, pass estimator=None (every skspro estimator used the default template), "
                "an unfitted skspro estimator with the template used at fit, or a list of them, one per "
                f"skspro estimator in the file; got {type(item).__name__}."
            )
        templates.append(None if item is None else item.estimator)
    return templates


def load_composition(path, estimator=None, trusted: list[str] | None = None):
    """Rebuild a composition written by :func:`save_composition`."""
    import skops.io

    from ._io import _model_from_meta, load

    check_archive(path)
    with zipfile.ZipFile(path) as archive:
        header = _read_header(path, archive)
        entries = header["models"]
        names = set(archive.namelist())
        needed = {_SKOPS} | {f"model_{i}.skspro" for i, e in enumerate(entries) if e["fitted"]}
        if not needed <= names:
            raise _refuse(path, f"records {sorted(needed - names)} are missing.")
        shell_bytes = archive.read(_SKOPS)
        blobs = {i: archive.read(f"model_{i}.skspro") for i, e in enumerate(entries) if e["fitted"]}
    untrusted = [t for t in skops.io.get_untrusted_types(data=shell_bytes) if t not in _TRUSTED]
    unexpected = sorted(set(untrusted) - set(trusted or []))
    if unexpected:
        raise ValueError(
            f"{os.fspath(path)!r} holds types that are not trusted: {unexpected}. Nothing was loaded. If you "
            "trust the file's source and these types, pass them as load(..., trusted=[...])."
        )
    shell = skops.io.loads(shell_bytes, trusted=[*_TRUSTED, *unexpected, *(trusted or [])])
    _restore_requests(path, shell)
    templates, classes = _templates(estimator, entries), skspro_classes()
    models = []
    with tempfile.TemporaryDirectory() as folder:
        for i, entry in enumerate(entries):
            model = classes[entry["estimator"]](estimator=templates[i])
            if entry["fitted"]:
                file = Path(folder) / f"model_{i}"
                file.write_bytes(blobs[i])
                try:
                    model = load(file, model)
                except ValueError as error:
                    where = f"{os.fspath(path)!r} (skspro estimator {i}, a {entry['estimator']})"
                    raise ValueError(str(error).replace(repr(str(file)), where)) from None
            else:
                model = _model_from_meta(path, entry, model)
            _set_requests(path, model, entry.get("requests"))
            models.append(model)
    slots = _find(shell, lambda item: isinstance(item, ModelSlot))
    if sorted(slot.index for slot in slots) != list(range(len(models))):
        raise _refuse(path, "its composition does not place each stored skspro estimator once.")
    memo = {id(slot): models[slot.index] for slot in slots}
    memo[id(memo)] = [*slots, *models]
    return copy.deepcopy(shell, memo)


#: Types trusted beyond skops' defaults: skspro's slot, scikit-learn's
#: ``Bunch`` (a dict with attribute access, in many fitted meta-estimators)
#: and the fitted parts of ``CalibratedClassifierCV`` (temperature scaling
#: is how skspro's docs calibrate), which hold arrays and numbers only.
_TRUSTED = [
    f"{ModelSlot.__module__}.{ModelSlot.__qualname__}",
    "sklearn.utils._bunch.Bunch",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
]
