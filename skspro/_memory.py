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
import enum
import functools
import hashlib
import json
import os
import platform
import sys
import types
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_memory
from skorch.history import History

from ._file_checks import check_archive, check_tensors, module_shapes

__all__ = ["CACHE_FORMAT", "MemberCache", "Uncacheable", "fingerprint", "member_cache"]

#: Layout of an entry; part of every key, so a new layout never reads an old one.
CACHE_FORMAT = 1
_MAGIC = "skspro-cache-entry"
_FOLDER = os.path.join("joblib", "skspro-members")  # inside joblib's own folder: Memory.clear() removes it

#: Settings of a vertex that its training depends on (``n_vertices`` and ``n_samples`` are not).
VERTEX_SETTINGS = ("vertex_epochs", "vertex_lr", "reg", "n_train_samples", "train_sampling")

#: Template parameters that do not change what a member learns: printing, and the
#: device, which enters the key as the kind of device the member trained on.
_NOT_IN_KEY = ("verbose", "device")

#: Top-level packages whose code the versions in the key stand for (skspro by
#: a digest of its source); classes and functions of any other module are
#: fingerprinted by their code.
_VERSIONED = {"torch", "skorch", "sklearn", "numpy", "scipy", "skspro", "builtins"}


class Uncacheable(TypeError):
    """A template holds something that cannot be fingerprinted reliably."""


# --------------------------------------------------------------------- keys
def _sha(data) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(structure) -> str:
    return _sha(json.dumps(structure, sort_keys=True, separators=(",", ":")).encode())


def _array_bytes(array: np.ndarray) -> str:
    return _sha(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _tensor_bytes(tensor: torch.Tensor) -> str:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return _sha(flat.view(torch.uint8).numpy()) if flat.numel() else _sha(b"")


def _versioned(module: str | None) -> bool:
    top = (module or "").split(".")[0]
    return top in _VERSIONED or top in sys.stdlib_module_names


def fingerprint(value, _stack: tuple = ()) -> list:
    """A JSON-able description of ``value`` that changes whenever it does.

    Numbers are exact (floats in hex), arrays and tensors are described by
    dtype, shape and a digest of their bytes, containers by their items in
    order, objects by their class and attributes, and classes and functions
    from outside the versioned packages (torch, skorch, scikit-learn, numpy,
    scipy, skspro, the standard library) by their code: a module class or a
    callback edited under the same name gets another fingerprint.

    Raises
    ------
    Uncacheable
        For an object with no attributes that joblib cannot hash either (a
        lock, a generator), or one nested too deeply.
    """
    if len(_stack) > 60:
        raise Uncacheable(f"an object nested more than 60 levels deep ({type(value).__name__})")
    if value is None or isinstance(value, bool | str) or value is Ellipsis:
        return [type(value).__name__, None if value is Ellipsis else value]
    if isinstance(value, np.generic):
        return ["numpy", value.dtype.str, _array_bytes(np.asarray(value))]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", value.hex()]
    if isinstance(value, complex):
        return ["complex", value.real.hex(), value.imag.hex()]
    if isinstance(value, bytes | bytearray):
        return ["bytes", _sha(bytes(value))]
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return ["ndarray", "object", list(value.shape), _items(value.ravel().tolist(), _stack)]
        return ["ndarray", value.dtype.str, list(value.shape), _array_bytes(value)]
    if isinstance(value, torch.Tensor):
        return [
            "tensor",
            _type_name(type(value)),
            str(value.dtype),
            list(value.shape),
            value.device.type,
            bool(value.requires_grad),
            _tensor_bytes(value),
        ]
    if isinstance(value, torch.dtype | torch.device | torch.layout | torch.memory_format):
        return ["torch", str(value)]
    if isinstance(value, enum.Enum):
        return ["enum", fingerprint(type(value), _stack), value.name]
    if id(value) in _stack:
        return ["cycle"]
    stack = (*_stack, id(value))
    if isinstance(value, type):
        return ["class", value.__module__, value.__qualname__, _class_code(value, stack)]
    if isinstance(value, types.FunctionType):
        return _function(value, stack)
    if isinstance(value, types.MethodType):
        return ["method", fingerprint(value.__func__, stack), fingerprint(value.__self__, stack)]
    if isinstance(value, types.BuiltinFunctionType | types.BuiltinMethodType):
        owner = getattr(value, "__self__", None)
        owner = None if owner is None or isinstance(owner, types.ModuleType) else fingerprint(owner, stack)
        return ["builtin", getattr(value, "__module__", None), value.__qualname__, owner]
    if isinstance(value, functools.partial):
        return [
            "partial",
            fingerprint(value.func, stack),
            fingerprint(value.args, stack),
            fingerprint(value.keywords, stack),
        ]
    if isinstance(value, list | tuple):
        return [_type_name(type(value)), _items(value, stack)]
    if isinstance(value, set | frozenset):
        items = sorted((fingerprint(v, stack) for v in value), key=json.dumps)
        return [_type_name(type(value)), items]
    if isinstance(value, Mapping):
        pairs = [[fingerprint(k, stack), fingerprint(v, stack)] for k, v in value.items()]
        return [_type_name(type(value)), pairs]
    return ["object", fingerprint(type(value), stack), _state(value, stack)]


def _items(values, stack: tuple) -> list:
    return [fingerprint(v, stack) for v in values]


def _type_name(cls: type) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _state(value, stack: tuple) -> list:
    """An instance's attributes (``__dict__`` and slots), or joblib's hash of it."""
    attributes = dict(vars(value)) if hasattr(value, "__dict__") else {}
    for cls in type(value).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name not in ("__dict__", "__weakref__") and hasattr(value, name):
                attributes[name] = getattr(value, name)
    if attributes or hasattr(value, "__dict__"):
        return [[name, fingerprint(attributes[name], stack)] for name in sorted(attributes)]
    import joblib

    try:
        return ["hash", joblib.hash(value)]
    except Exception as error:
        raise Uncacheable(f"a {type(value).__name__} ({type(error).__name__}: {error})") from None


#: Class attributes that are bookkeeping, not behaviour.
_CLASS_BOOKKEEPING = {
    "__dict__",
    "__weakref__",
    "__module__",
    "__doc__",
    "__qualname__",
    "__annotations__",
    "__firstlineno__",
    "__static_attributes__",
    "__orig_bases__",
    "__parameters__",
    "_abc_impl",
}


def _class_code(cls: type, stack: tuple) -> list | None:
    """The code and attributes of every class of ``cls``'s MRO that no version in the key covers."""
    parts = []
    for klass in cls.__mro__:
        if _versioned(klass.__module__):
            continue
        members = []
        for name, attribute in sorted(vars(klass).items()):
            if name in _CLASS_BOOKKEEPING:
                continue
            if isinstance(attribute, staticmethod | classmethod):
                attribute = attribute.__func__
            if isinstance(attribute, property):
                attribute = (attribute.fget, attribute.fset, attribute.fdel)
            if type(attribute).__module__ == "builtins" and type(attribute).__name__.endswith("descriptor"):
                attribute = type(attribute).__name__  # slots and C-level accessors
            members.append([name, fingerprint(attribute, stack)])
        parts.append([klass.__module__, klass.__qualname__, members])
    return parts or None


def _function(function: types.FunctionType, stack: tuple) -> list:
    head = ["function", function.__module__, function.__qualname__]
    if _versioned(function.__module__):
        return head
    cells = []
    for cell in function.__closure__ or ():
        try:
            cells.append(fingerprint(cell.cell_contents, stack))
        except ValueError:  # an empty cell
            cells.append(["empty"])
    return [
        *head,
        _code(function.__code__, stack),
        fingerprint(function.__defaults__, stack),
        fingerprint(function.__kwdefaults__, stack),
        cells,
    ]


def _code(code: types.CodeType, stack: tuple) -> list:
    consts = [
        _code(c, stack) if isinstance(c, types.CodeType) else fingerprint(c, stack) for c in code.co_consts
    ]
    return [
        _sha(code.co_code),
        consts,
        list(code.co_names),
        list(code.co_varnames),
        list(code.co_freevars),
        code.co_flags,
    ]


@functools.lru_cache(maxsize=1)
def _software() -> dict:
    """Versions of what training runs on, and a digest of skspro's own source."""
    import sklearn
    import skorch

    from . import __version__

    root = Path(__file__).resolve().parent
    source = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        source.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return {
        "python": [platform.python_implementation(), platform.python_version()],
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "skspro": __version__,
        "skspro_source": source.hexdigest(),
    }


def device_kind(device: torch.device) -> dict:
    """What about the device a network trains on can change its weights: the
    kind of device (not its index), and the numerical settings of torch."""
    kind = {
        "type": device.type,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        kind |= {
            "name": torch.cuda.get_device_name(index),
            "capability": list(torch.cuda.get_device_capability(index)),
            "cuda": torch.version.cuda,
            "cudnn": [
                torch.backends.cudnn.version(),
                torch.backends.cudnn.deterministic,
                torch.backends.cudnn.benchmark,
                torch.backends.cudnn.allow_tf32,
            ],
            "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        }
    else:  # CPU kernels are chosen by instruction set; reductions may split by thread
        kind |= {
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
        }
    return kind


def _tensors_key(tensors: Mapping[str, torch.Tensor]) -> list:
    return [[name, str(t.dtype), list(t.shape), _tensor_bytes(t)] for name, t in tensors.items()]


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
    digest = hashlib.sha256()

    def walk(item, where):
        if isinstance(item, torch.Tensor):
            digest.update(f"{where}|{item.dtype}|{tuple(item.shape)}|".encode())
            digest.update(_tensor_bytes(item).encode())
        elif isinstance(item, dict):
            for key in sorted(item, key=repr):
                walk(item[key], f"{where}[{key!r}]")
        elif isinstance(item, list | tuple):
            digest.update(f"{where}|{type(item).__name__}{len(item)}|".encode())
            for i, element in enumerate(item):
                walk(element, f"{where}[{i}]")
        else:
            digest.update(f"{where}|{item!r}|".encode())

    walk(value, "")
    return digest.hexdigest()


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
        return _digest({"base": self.base, "kind": kind, **parts})

    def net_key(self, net, seed: int) -> str:
        from ._members import device_of

        return self._key("net", seed=int(seed), device=device_kind(device_of(net)))

    def vertex_key(self, net, pool, buffers: Mapping[str, torch.Tensor], seed: int, spec) -> str:
        from ._members import device_of

        return self._key(
            "vertex",
            seed=int(seed),
            device=device_kind(device_of(net)),
            pool=_tensors_key(pool.params),
            buffers=_tensors_key(buffers),
            settings={name: fingerprint(getattr(spec, name)) for name in VERTEX_SETTINGS},
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
            _write_atomically({"meta": json.dumps(header), **data}, self._path(kind, key))
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
        name: [str(np.asarray(a).dtype), list(np.shape(a)), _array_bytes(np.asarray(a))]
        for name, a in sorted(data.items())
        if a is not None
    }
    base = {
        "format": CACHE_FORMAT,
        "software": _software(),
        "template": described,
        "data": arrays,
        "classes": fingerprint(np.asarray(classes)),
    }
    return MemberCache(directory, _digest(base))
