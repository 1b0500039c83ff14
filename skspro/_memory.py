"""The estimators' ``memory``: trained members and vertices reused across fits.

A member depends on the template, the training data, its seed and the
device it trains on, not on the simplex settings; a vertex depends on the
simplex it completes, the data and the vertex settings, not on how many
vertices follow it. Both are stored in a directory (a ``joblib.Memory``'s
location) under a key that digests everything they depend on, so fits that
differ only in other settings (a grid search over ``vertex_lr``,
``n_vertices``, ``reg``, the connector's settings) train each once.

Entries are skspro weights archives (tensors and JSON text, written
atomically by :mod:`skspro._io`'s writer, read with
``torch.load(weights_only=True)`` after :mod:`skspro._file_checks`' archive
and tensor checks), never pickles. An entry that cannot be read, fails a
check, belongs to another key or whose content digest does not match is a
miss: a warning, training as without the cache, and an atomic overwrite.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_memory
from skorch.history import History

from . import _training
from ._file_checks import check_archive, check_tensors, module_shapes
from ._fingerprint import (
    Uncacheable,
    array_digest,
    device_kind,
    digest,
    fingerprint,
    software,
    tensor_digest,
    tensors_key,
)

__all__ = ["CACHE_FORMAT", "MemberCache", "cache_directory", "member_cache"]

#: Layout of an entry; part of every key, so a new layout never reads an old one.
CACHE_FORMAT = 1
_MAGIC = "skspro-cache-entry"
_FOLDER = os.path.join("joblib", "skspro-members")  # inside joblib's own folder: Memory.clear() removes it

#: Settings of a vertex that its training depends on (``n_vertices`` and ``n_samples`` are not).
VERTEX_SETTINGS = (
    "vertex_epochs",
    "vertex_lr",
    "reg",
    "vertex_weight_decay",
    "n_train_samples",
    "train_sampling",
)

#: Template parameters that do not change what a member learns: printing, and the
#: device, which enters the key as the kind of device the member trained on.
_NOT_IN_KEY = ("verbose", "device")


def _vertex_setting(spec, name: str):
    """A vertex setting as it enters the key: ``vertex_weight_decay="auto"`` with the rule
    it stands for, so that entries trained under another rule of "auto" are not reused."""
    value = getattr(spec, name)
    if name == "vertex_weight_decay" and value == "auto":
        # looked up at call time, so the key follows the module's constants
        return ("auto", _training.AUTO_DECAY_RULE, _training.AUTO_DECAY_PER_EPOCH)
    return value


# ------------------------------------------------------------------ entries
def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").contiguous().clone()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value


def _content(value) -> str:
    """A digest of an entry's tensors and data, recorded in its header and checked on reading."""
    hasher = hashlib.sha256()

    def walk(item, where):
        if isinstance(item, torch.Tensor):
            hasher.update(f"{where}|{item.dtype}|{tuple(item.shape)}|".encode())
            hasher.update(tensor_digest(item).encode())
        elif isinstance(item, dict):
            for key in sorted(item, key=repr):
                walk(item[key], f"{where}[{key!r}]")
        elif isinstance(item, list | tuple):
            hasher.update(f"{where}|{type(item).__name__}{len(item)}|".encode())
            for i, element in enumerate(item):
                walk(element, f"{where}[{i}]")
        else:
            hasher.update(f"{where}|{item!r}|".encode())

    walk(value, "")
    return hasher.hexdigest()


def _history_json(history) -> str:
    return json.dumps(list(history), allow_nan=True)


class MemberCache:
    """Where one fit's members and vertices are looked up and stored.

    Built once per fit by :func:`member_cache` (the template and the data are
    fingerprinted there, in the calling process); it pickles to joblib and
    Dask workers as a directory and a digest. The key of an entry adds what
    is only known in the job: the seed, the device kind, and for a vertex
    the simplex it completes.
    """

    def __init__(self, directory: str, base: str) -> None:
        self.directory = directory
        self.base = base

    # ---------------------------------------------------------------- keys
    def _key(self, kind: str, **parts) -> str:
        return digest({"base": self.base, "kind": kind, **parts})

    def net_key(self, net, seed: int) -> str:
        from ._members import device_of

        return self._key("net", seed=int(seed), device=device_kind(device_of(net)))

    def vertex_key(self, net, pool, buffers: Mapping[str, torch.Tensor], seed: int, spec) -> str:
        from ._members import device_of

        return self._key(
            "vertex",
            seed=int(seed),
            device=device_kind(device_of(net)),
            pool=tensors_key(pool.params),
            buffers=tensors_key(buffers),
            settings={name: fingerprint(_vertex_setting(spec, name)) for name in VERTEX_SETTINGS},
        )

    def _path(self, kind: str, key: str) -> Path:
        return Path(self.directory) / f"{kind}-{key}.pt"

    # ------------------------------------------------------------- members
    def load_net(self, net, seed: int):
        """``(fitted net, training seconds)`` from the cache, or None.

        ``net`` is the configured, unfitted clone the member would train; a
        deep copy of it is initialised (the caller forks torch's random
        state) and given the stored weights, optimizer state, history and
        inferred classes. ``net`` itself is left as it was, so a miss trains
        it as without the cache.
        """
        key = self.net_key(net, seed)
        payload = self._read("net", key)
        if payload is None:
            return None
        try:
            fitted = copy.deepcopy(net)
            fitted.initialize()
            modules, optimizers = payload["modules"], payload["optimizers"]
            if set(modules) != set(fitted._modules + fitted._criteria) or set(optimizers) != set(
                fitted._optimizers
            ):
                raise ValueError("it holds other modules or optimizers than the template's net")
            for name, state in modules.items():
                _load_module(getattr(fitted, name + "_"), state, payload["extra_buffers"][name])
            for name, state in optimizers.items():
                _load_optimizer(getattr(fitted, name + "_"), state)
            fitted.history = History(json.loads(payload["history"]))
            classes = payload["meta"]["classes_inferred"]
            if classes is not None:
                fitted.classes_inferred_ = np.asarray(classes["values"], dtype=classes["dtype"])
        except Exception as error:
            self._warn(self._path("net", key), f"{type(error).__name__}: {error}")
            return None
        return fitted, float(payload["meta"]["seconds"])

    def store_net(self, net, seed: int, seconds: float) -> None:
        """Store a member net trained from ``seed`` (a warning, not an error, if it cannot be written)."""
        names = net._modules + net._criteria
        modules = {name: _to_cpu(getattr(net, name + "_").state_dict()) for name in names}
        extra = {name: _to_cpu(_extra_buffers(getattr(net, name + "_"))) for name in names}
        optimizers = {name: _to_cpu(getattr(net, name + "_").state_dict()) for name in net._optimizers}
        classes = getattr(net, "classes_inferred_", None)
        if classes is not None:
            classes = {"dtype": np.asarray(classes).dtype.str, "values": np.asarray(classes).tolist()}
        try:
            history = _history_json(net.history)
        except (TypeError, ValueError) as error:
            self._not_stored(f"its training history is not JSON data ({error})")
            return
        data = {"modules": modules, "extra_buffers": extra, "optimizers": optimizers, "history": history}
        self._write("net", self.net_key(net, seed), data, seconds=seconds, classes_inferred=classes)

    # ------------------------------------------------------------ vertices
    def load_vertex(self, net, pool, buffers, seed: int, spec):
        """``(vertex, history, training seconds)`` from the cache, or None."""
        key = self.vertex_key(net, pool, buffers, seed, spec)
        payload = self._read("vertex", key)
        if payload is None:
            return None
        try:
            vertex = payload["vertex"]
            if not isinstance(vertex, dict) or list(vertex) != list(pool.params):
                raise ValueError("its vertex does not hold the module's parameters")
            for name, tensor in vertex.items():
                expected = pool.params[name]
                if tuple(tensor.shape) != tuple(expected.shape[1:]) or tensor.dtype != expected.dtype:
                    raise ValueError(f"its vertex {name!r} is {tensor.dtype} {tuple(tensor.shape)}")
            if not all(bool(torch.isfinite(t).all()) for t in vertex.values()):
                raise ValueError("its vertex is not finite")
            history = History(json.loads(payload["history"]))
        except Exception as error:
            self._warn(self._path("vertex", key), f"{type(error).__name__}: {error}")
            return None
        device = next(iter(pool.params.values())).device
        return {k: v.to(device) for k, v in vertex.items()}, history, float(payload["meta"]["seconds"])

    def store_vertex(self, net, pool, buffers, seed: int, spec, vertex, history, seconds: float) -> None:
        """Store a trained vertex under the key of the simplex it completes."""
        try:
            history = _history_json(history)
        except (TypeError, ValueError) as error:
            self._not_stored(f"its vertex history is not JSON data ({error})")
            return
        key = self.vertex_key(net, pool, buffers, seed, spec)
        self._write("vertex", key, {"vertex": _to_cpu(dict(vertex)), "history": history}, seconds=seconds)

    # ----------------------------------------------------------------- I/O
    def _write(self, kind: str, key: str, data: dict, **meta) -> None:
        from . import __version__
        from ._io import _write_atomically  # skspro._io imports the members module, which imports this one

        header = {
            "magic": _MAGIC,
            "format": CACHE_FORMAT,
            "kind": kind,
            "key": key,
            "skspro_version": __version__,
            "content": _content(data),
            **meta,
        }
        try:
            payload = {"meta": json.dumps(header), **data}
            _write_atomically(self._path(kind, key), lambda file: torch.save(payload, file), durable=False)
        except Exception as error:  # a full disk, a read-only folder: the fit goes on without storing
            self._not_stored(f"writing it failed ({type(error).__name__}: {error})")

    def _read(self, kind: str, key: str) -> dict | None:
        """The checked payload of the entry, its header parsed; None for a miss."""
        path = self._path(kind, key)
        if not path.exists():
            return None
        try:
            check_archive(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's warnings about a refused file
                payload = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(payload, dict) or not isinstance(payload.get("meta"), str):
                raise ValueError("it has no skspro header")
            meta = json.loads(payload.pop("meta"))
            if (
                not isinstance(meta, dict)
                or meta.get("magic") != _MAGIC
                or meta.get("format") != CACHE_FORMAT
            ):
                raise ValueError("it is not a skspro cache entry of this format")
            if meta.get("kind") != kind or meta.get("key") != key:
                raise ValueError("it was stored under another key")
            check_tensors(path, payload, lambda where: False)
            if meta.get("content") != _content(payload):
                raise ValueError("its content does not match its digest (truncated or altered)")
            if not isinstance(meta.get("seconds"), int | float):
                raise ValueError("its header has no training time")
        except Exception as error:  # every failure is a miss
            self._warn(path, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            return None
        return payload | {"meta": meta}

    @staticmethod
    def _warn(path, reason: str) -> None:
        warnings.warn(
            f"Ignoring the skspro cache entry {os.fspath(path)!r}: {reason}. Training again and "
            "overwriting it.",
            UserWarning,
            stacklevel=4,
        )

    @staticmethod
    def _not_stored(reason: str) -> None:
        warnings.warn(f"A trained network was not stored in memory: {reason}.", UserWarning, stacklevel=4)


def _extra_buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Buffers that ``state_dict`` leaves out (registered with ``persistent=False``)."""
    persistent = set(module.state_dict())
    return {name: b for name, b in module.named_buffers() if name not in persistent}


def _load_module(module: torch.nn.Module, state: dict, extra: dict) -> None:
    shapes, _, dtypes = module_shapes(module)
    stored = {name: (tuple(t.shape), t.dtype) for name, t in state.items()}
    if stored != {name: (shapes[name], dtypes[name]) for name in shapes}:
        raise ValueError("its module state does not fit the template's module (names, shapes or dtypes)")
    module.load_state_dict(state, strict=True)
    own = _extra_buffers(module)
    if set(own) != set(extra):
        raise ValueError("its non-persistent buffers are not the module's")
    with torch.no_grad():
        for name, buffer in own.items():
            if buffer.shape != extra[name].shape or buffer.dtype != extra[name].dtype:
                raise ValueError(f"its buffer {name!r} does not fit the module's")
            buffer.copy_(extra[name])


def _load_optimizer(optimizer: torch.optim.Optimizer, state: dict) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, values in state.get("state", {}).items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            raise ValueError("its optimizer state names a parameter the optimizer does not have")
        for value in values.values():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[index].shape:
                raise ValueError("its optimizer state does not fit the module's parameters")
    optimizer.load_state_dict(state)


# -------------------------------------------------------------------- setup
def cache_directory(memory) -> str | None:
    """The folder entries go to for the estimators' ``memory``, created; None for no caching.

    Raises
    ------
    ValueError
        For a ``memory`` that is not a directory or a joblib ``Memory`` with a
        local location, or a directory that cannot be created.
    """
    if isinstance(memory, os.PathLike):
        memory = os.fspath(memory)
    try:
        memory = check_memory(memory)  # joblib creates the folder of a path
    except OSError as error:
        raise ValueError(
            f"memory={memory!r}: cannot create the cache folder ({type(error).__name__}: {error}). "
            "Pass a writable directory, or memory=None."
        ) from None
    location = getattr(memory, "location", None)
    if location is None and hasattr(memory, "location"):
        return None  # joblib.Memory(location=None) caches nothing
    if not isinstance(location, str | os.PathLike) or getattr(memory, "backend", "local") != "local":
        raise ValueError(
            f"memory must be None, a directory (str or path) or a joblib.Memory with a local location; "
            f"got {memory!r}. skspro stores weights in its own files in that directory, not through "
            "Memory.cache."
        )
    directory = os.path.join(os.fspath(location), _FOLDER)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"memory={os.fspath(location)!r}: cannot create the cache folder {directory!r} "
            f"({type(error).__name__}: {error}). Pass a writable directory, or memory=None."
        ) from None
    return directory


def member_cache(memory, template, data: Mapping[str, np.ndarray | None], classes) -> MemberCache | None:
    """The cache of one fit, or None when ``memory`` is None.

    Parameters
    ----------
    memory : None, str, path or joblib.Memory
        The estimator's ``memory``.
    template : skorch NeuralNet
        The members' template (as :func:`skspro._inputs.member_template` makes it).
    data : mapping of str to ndarray or None
        The arrays the members are fitted on, by name (``{"X": X, "y": y}``,
        ``y`` encoded); a None value is left out, so an optional fit input
        changes no key when it is not given.
    classes : ndarray
        The original class labels: a member of other labels is another entry,
        even with the same encoded ``y``.
    """
    directory = cache_directory(memory)
    if directory is None:
        return None
    try:
        params = template.get_params(deep=False)
        described = {
            "class": fingerprint(type(template)),
            "params": [[k, fingerprint(params[k])] for k in sorted(params) if k not in _NOT_IN_KEY],
        }
    except Uncacheable as error:
        warnings.warn(
            f"memory is not used for this fit: the template holds {error}, which skspro cannot "
            "fingerprint reliably; members are trained as without memory.",
            UserWarning,
            stacklevel=3,
        )
        return None
    arrays = {
        name: [str(np.asarray(a).dtype), list(np.shape(a)), array_digest(np.asarray(a))]
        for name, a in sorted(data.items())
        if a is not None
    }
    base = {
        "format": CACHE_FORMAT,
        "software": software(),
        "template": described,
        "data": arrays,
        "classes": fingerprint(np.asarray(classes)),
    }
    return MemberCache(directory, digest(base))
