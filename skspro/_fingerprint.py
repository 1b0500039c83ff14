"""Fingerprints: JSON-able descriptions that change whenever what they describe does.

The keys of :mod:`skspro._memory` are digests of these: template parameters
(values exactly, objects by class and attributes, user classes and functions
by their code), arrays and tensors by their bytes, the software and the
device kind a network trains with.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import platform
import sys
import types
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "Uncacheable",
    "array_digest",
    "device_kind",
    "digest",
    "fingerprint",
    "sha256_hex",
    "software",
    "tensor_digest",
    "tensors_key",
]

#: Top-level packages whose code the versions in the key stand for (skspro by
#: a digest of its source); classes and functions of any other module are
#: fingerprinted by their code.
_VERSIONED = {"torch", "skorch", "sklearn", "numpy", "scipy", "skspro", "builtins"}


class Uncacheable(TypeError):
    """A template holds something that cannot be fingerprinted reliably."""


def sha256_hex(data) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(structure) -> str:
    return sha256_hex(json.dumps(structure, sort_keys=True, separators=(",", ":")).encode())


def array_digest(array: np.ndarray) -> str:
    return sha256_hex(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def tensor_digest(tensor: torch.Tensor) -> str:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return sha256_hex(flat.view(torch.uint8).numpy()) if flat.numel() else sha256_hex(b"")


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
    # Longer than most functions here on purpose: one flat dispatch, a case per kind of value, in
    # an order that matters (bool before int, numpy scalars before int and float, the cycle check
    # before any container); splitting it would scatter the order over several functions.
    if len(_stack) > 60:
        raise Uncacheable(f"an object nested more than 60 levels deep ({type(value).__name__})")
    if value is None or isinstance(value, bool | str) or value is Ellipsis:
        return [type(value).__name__, None if value is Ellipsis else value]
    if isinstance(value, np.generic):
        return ["numpy", value.dtype.str, array_digest(np.asarray(value))]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", value.hex()]
    if isinstance(value, complex):
        return ["complex", value.real.hex(), value.imag.hex()]
    if isinstance(value, bytes | bytearray):
        return ["bytes", sha256_hex(bytes(value))]
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return ["ndarray", "object", list(value.shape), _items(value.ravel().tolist(), _stack)]
        return ["ndarray", value.dtype.str, list(value.shape), array_digest(value)]
    if isinstance(value, torch.Tensor):
        return [
            "tensor",
            _type_name(type(value)),
            str(value.dtype),
            list(value.shape),
            value.device.type,
            bool(value.requires_grad),
            tensor_digest(value),
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
        sha256_hex(code.co_code),
        consts,
        list(code.co_names),
        list(code.co_varnames),
        list(code.co_freevars),
        code.co_flags,
    ]


@functools.lru_cache(maxsize=1)
def software() -> dict:
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


def tensors_key(tensors: Mapping[str, torch.Tensor]) -> list:
    return [[name, str(t.dtype), list(t.shape), tensor_digest(t)] for name, t in tensors.items()]
