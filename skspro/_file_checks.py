"""What :func:`skspro.load` checks before it builds anything from a file.

A model file comes from outside: it may be truncated, from another version,
or crafted. Loading never runs code from it (``torch.load(weights_only=True)``
refuses every object but tensors and plain data), and before anything is
allocated from the file's declarations the checks here refuse:

* archives whose records are compressed or declare more bytes than the file
  holds (a small file inflating to gigabytes), before torch reads them;
* tensors that are not plain, dense CPU tensors within their own storage
  (sparse or meta tensors, stride tricks that make a few bytes look like
  gigabytes, tensors aliasing each other's storage), or hold NaN / inf;
* a header or member record with missing keys or values of the wrong type;
* more members, classes or label bytes than :data:`LIMITS` allow;
* shapes that do not match the template the file is loaded with, checked
  on a module built on the meta device (no memory), so that sizes stored in
  the file never reach an allocation.

Every refusal is a ``ValueError`` that names the file and what is wrong.
"""

from __future__ import annotations

import math
import os
import zipfile
from numbers import Integral, Real

import numpy as np
import torch

__all__ = [
    "LIMITS",
    "check_archive",
    "check_meta",
    "check_payload",
    "check_shapes",
    "label_array",
    "module_shapes",
    "template_shapes",
]

#: Upper bounds on what a file may declare.
LIMITS = {"members": 1024, "modes": 1024, "classes": 100_000, "label_chars": 1024, "records": 100_000}


def _refuse(path, message: str) -> ValueError:
    return ValueError(f"{os.fspath(path)!r} is not a valid skspro weights file: {message}")


def check_archive(path) -> None:
    """Refuse a file that is not a torch zip archive of stored (uncompressed) records."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{os.fspath(path)!r} is not a skspro weights file (a torch archive of tensors and plain data); "
            "any other file, pickled objects included, is refused without running them."
        )
    with zipfile.ZipFile(path) as archive:
        records = archive.infolist()
    if len(records) > LIMITS["records"]:
        raise _refuse(path, f"it has {len(records)} records (at most {LIMITS['records']}).")
    for record in records:
        if record.compress_type != zipfile.ZIP_STORED:
            raise _refuse(path, f"record {record.filename!r} is compressed; skspro.save writes none.")
    declared = sum(record.file_size for record in records)
    if declared > os.path.getsize(path):
        raise _refuse(path, f"its records declare {declared} bytes, more than the file's size.")


def _tensors(value, where: str):
    """Every tensor in a payload, with where it is."""
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{where}[{i}]")


def _check_tensor(path, where: str, tensor: torch.Tensor) -> None:
    if tensor.layout != torch.strided or tensor.device.type != "cpu":
        raise _refuse(
            path, f"{where} is a {tensor.layout} tensor on {tensor.device}; only dense CPU tensors."
        )
    if tensor.dtype.is_complex or not (tensor.dtype.is_floating_point or tensor.dtype in _INTEGER):
        raise _refuse(path, f"{where} has dtype {tensor.dtype}.")
    needed = (tensor.storage_offset() + tensor.numel()) * tensor.element_size()
    if not tensor.is_contiguous() or needed > tensor.untyped_storage().nbytes():
        raise _refuse(path, f"{where} is a view of shape {tuple(tensor.shape)} beyond or across its storage.")
    if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
        raise _refuse(path, f"{where} holds NaN or infinite values.")


_INTEGER = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)


def check_payload(path, payload) -> None:
    """Refuse a payload whose structure or tensors are not what :func:`skspro.save` writes."""
    if not isinstance(payload, dict) or not isinstance(payload.get("members"), list):
        raise _refuse(path, "it has no list of members.")
    n_members = len(payload["members"])
    if not 1 <= n_members <= LIMITS["members"]:
        raise _refuse(path, f"it has {n_members} members (1 to {LIMITS['members']}).")
    for i, member in enumerate(payload["members"]):
        _check_record(path, f"member {i}", member, _MEMBER_KEYS)
    if "connector" in payload or "modes" in payload:
        modes = payload.get("modes")
        if not isinstance(payload.get("connector"), str) or not isinstance(modes, list):
            raise _refuse(path, "its connector record is incomplete.")
        if not 1 <= len(modes) <= LIMITS["modes"] or not all(_is_state(m) for m in modes):
            raise _refuse(path, f"it has {len(modes)} modes, or a mode that is not a module state.")
    declared, storages = 0, {}
    for where, tensor in _tensors(payload, "payload"):
        _check_tensor(path, where, tensor)
        declared += tensor.numel() * tensor.element_size()
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    if declared > 2 * sum(storages.values()) + 2**20:
        raise _refuse(path, f"its tensors declare {declared} bytes over {sum(storages.values())} stored.")


def _is_state(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


def _is_numbers(value) -> bool:
    # -inf is a legitimate log-volume (a degenerate simplex); NaN is not.
    return isinstance(value, list | tuple) and all(isinstance(v, Real) and not math.isnan(v) for v in value)


_MEMBER_KEYS = {
    "module_state": _is_state,
    "simplex": _is_state,
    "norm_buffers": _is_state,
    "sample_weights": lambda v: isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[0] >= 1,
    "log_volumes": _is_numbers,
    "vertex_times": _is_numbers,
    "seed": lambda v: isinstance(v, Integral),
    "fit_time": lambda v: isinstance(v, Real),
}


def _check_record(path, where: str, record, keys: dict) -> None:
    if not isinstance(record, dict):
        raise _refuse(path, f"{where} is a {type(record).__name__}, not a record.")
    for key, valid in keys.items():
        if key not in record:
            raise _refuse(path, f"{where} has no {key!r}.")
        if not valid(record[key]):
            raise _refuse(path, f"{where}: {key!r} has the wrong type or shape.")


_META_KEYS = {
    "format_version": lambda v: isinstance(v, Integral),
    "skspro_version": lambda v: isinstance(v, str),
    "estimator": lambda v: isinstance(v, str),
    "params": lambda v: isinstance(v, dict),
    "classes": lambda v: (
        isinstance(v, dict) and isinstance(v.get("values"), list) and isinstance(v.get("dtype"), str)
    ),
    "n_features_in": lambda v: isinstance(v, Integral) and v >= 1,
    "feature_names_in": lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
    "input_shape": lambda v: isinstance(v, list) and v and all(isinstance(d, Integral) and d >= 1 for d in v),
    "n_networks": lambda v: isinstance(v, Integral) and v >= 1,
}


def check_meta(path, meta: dict) -> None:
    """Refuse a header with missing keys, values of the wrong type, or rows that disagree with it."""
    _check_record(path, "the header", meta, _META_KEYS)
    if meta["input_shape"][0] != meta["n_features_in"]:
        raise _refuse(
            path, f"input_shape {meta['input_shape']} disagrees with n_features_in {meta['n_features_in']}."
        )
    names = meta["feature_names_in"]
    if names and len(names) != meta["n_features_in"]:
        raise _refuse(path, f"it names {len(names)} features but has n_features_in {meta['n_features_in']}.")


def label_array(path, classes: dict) -> np.ndarray:
    """The stored class labels; refused if the dtype is not a plain one or is wider than the labels."""
    values = classes["values"]
    if not 2 <= len(values) <= LIMITS["classes"] or len(set(map(repr, values))) != len(values):
        raise _refuse(
            path, f"it has {len(values)} class labels, or repeated ones (2 to {LIMITS['classes']})."
        )
    try:
        dtype = np.dtype(classes["dtype"])
    except TypeError:
        raise _refuse(path, f"class labels of dtype {classes['dtype']!r}.") from None
    widest = max(len(str(v)) for v in values)
    if dtype.kind not in "biufUO" or (
        dtype.kind == "U" and dtype.itemsize // 4 > max(widest, LIMITS["label_chars"])
    ):
        raise _refuse(path, f"class labels of dtype {dtype} for labels of at most {widest} characters.")
    return np.asarray(values, dtype=dtype)


def template_shapes(template) -> tuple[dict[str, tuple], set[str]] | None:
    """Shapes of the template module's state and its parameter names, from a
    module built on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            module = template.initialized_instance(template.module, template.get_params_for("module"))
    except Exception:  # a module that cannot be built on the meta device: checked after building
        return None
    return module_shapes(module)


def module_shapes(module: torch.nn.Module) -> tuple[dict[str, tuple], set[str]]:
    """Shapes of a module's state and its parameter names."""
    shapes = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    return shapes, {name for name, _ in module.named_parameters()}


def check_shapes(path, payload: dict, template: tuple[dict[str, tuple], set[str]], n_networks: int) -> None:
    """Every stored module state, simplex, sample-weight matrix and buffer against the template's shapes."""
    shapes, params = template
    states = [(f"member {i}", m["module_state"]) for i, m in enumerate(payload["members"])]
    states += [(f"mode {i}", state) for i, state in enumerate(payload.get("modes", []))]
    for where, state in states:
        for name in [*shapes, *(n for n in state if n not in shapes)]:
            stored, expected = tuple(state[name].shape) if name in state else None, shapes.get(name)
            if stored != expected:
                raise ValueError(
                    f"{os.fspath(path)!r} does not fit the template it is loaded with: {where}'s {name!r} "
                    f"has shape {stored} in the file and {expected} in the template. Load it with the "
                    "template the model was fitted with (the same module and module__ settings, e.g. "
                    "module__input_dim)."
                )
    total = 0
    for i, member in enumerate(payload["members"]):
        _check_simplex(path, f"member {i}", member, shapes, params)
        total += len(member["sample_weights"])
    if total != n_networks:
        raise _refuse(path, f"its members hold {total} prediction networks, its header says {n_networks}.")


def _check_simplex(path, where: str, member: dict, shapes: dict[str, tuple], params: set[str]) -> None:
    simplex, weights = member["simplex"], member["sample_weights"]
    n_vertices = weights.shape[1]
    if set(simplex) != params:
        raise _refuse(path, f"{where}'s simplex does not hold the module's parameters.")
    for name, tensor in simplex.items():
        if tuple(tensor.shape) != (n_vertices, *shapes[name]):
            raise _refuse(
                path,
                f"{where}'s simplex {name!r} has shape {tuple(tensor.shape)}, not {n_vertices} vertices.",
            )
    if bool((weights < 0).any()) or not torch.allclose(
        weights.double().sum(1), torch.ones(len(weights)).double(), atol=1e-4
    ):
        raise _refuse(
            path, f"{where}'s sample weights are not points of the simplex (non-negative, summing to 1)."
        )
    for name, buffer in member["norm_buffers"].items():
        if name not in shapes or tuple(buffer.shape) != (len(weights), *shapes[name]):
            raise _refuse(path, f"{where}'s statistics {name!r} have shape {tuple(buffer.shape)}.")
