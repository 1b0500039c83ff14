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

The header's sizes must agree with the stored members, and the template's
module settings recorded at save with the template given to load.

Every refusal is a ``ValueError`` that names the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import json
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
    "check_tensors",
    "label_array",
    "check_sizes",
    "check_template_settings",
    "fitted_fields",
    "module_shapes",
    "template_settings",
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
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except Exception as error:  # BadZipFile, NotImplementedError, ... from a corrupt directory
        raise _refuse(path, f"its zip structure is corrupt ({type(error).__name__}: {error}).") from None
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


def _check_tensor(path, where: str, tensor: torch.Tensor, finite: bool) -> None:
    if tensor.layout != torch.strided or tensor.device.type != "cpu":
        raise _refuse(
            path, f"{where} is a {tensor.layout} tensor on {tensor.device}; only dense CPU tensors."
        )
    if tensor.dtype.is_complex or not (tensor.dtype.is_floating_point or tensor.dtype in _INTEGER):
        raise _refuse(path, f"{where} has dtype {tensor.dtype}.")
    stored = tensor.untyped_storage().nbytes()
    extent = tensor.storage_offset() + 1 + sum((n - 1) * st for n, st in zip(tensor.shape, tensor.stride()))
    declared = tensor.numel() * tensor.element_size()
    if tensor.numel() and (extent * tensor.element_size() > stored or declared > max(2 * stored, 2**20)):
        # a broadcast view (stride 0) that makes a few stored bytes look like gigabytes
        raise _refuse(
            path, f"{where} is a view of shape {tuple(tensor.shape)} beyond what its storage holds."
        )
    if tensor.dtype.is_floating_point:
        bad = torch.isnan(tensor) if not finite else ~torch.isfinite(tensor)
        if bool(bad.any()):
            raise _refuse(path, f"{where} holds NaN{'' if not finite else ' or infinite'} values.")


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
    records = payload["members"] + payload.get("modes", [])
    if len({id(record) for record in records}) != len(records):
        raise _refuse(path, "it repeats one member or mode record (save writes each once).")
    # Weights and sample points must be finite; buffers may hold infinities (masks).
    check_tensors(path, payload, lambda where: "['simplex']" in where or "['sample_weights']" in where)


def check_tensors(path, payload, finite) -> None:
    """Refuse any tensor in ``payload`` (nested dicts, lists, tuples) that is not a
    plain, dense CPU tensor within its own storage, or holds NaN; where
    ``finite(where)`` is true, infinities are refused too."""
    for where, tensor in _tensors(payload, "payload"):
        _check_tensor(path, where, tensor, finite(where))


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
    if not all(isinstance(v, str | bool | Real) for v in values):
        raise _refuse(path, "its class labels are not plain strings, numbers or booleans.")
    if not 2 <= len(values) <= LIMITS["classes"] or len(set(map(repr, values))) != len(values):
        raise _refuse(
            path, f"it has {len(values)} class labels, or repeated ones (2 to {LIMITS['classes']})."
        )
    try:
        dtype = np.dtype(classes["dtype"])
    except TypeError:
        raise _refuse(path, f"class labels of dtype {classes['dtype']!r}.") from None
    widest = max(len(str(v)) for v in values)
    if dtype.kind not in "biufUO" or dtype.itemsize * len(values) > 64 * 2**20:
        raise _refuse(path, f"class labels of dtype {dtype} for labels of at most {widest} characters.")
    try:
        labels = np.asarray(values, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as error:
        raise _refuse(path, f"its class labels do not fit dtype {dtype} ({error}).") from None
    if labels.ndim != 1:
        raise _refuse(path, "its class labels are not a flat list.")
    return labels


def template_shapes(template) -> tuple[dict[str, tuple], set[str]] | None:
    """Shapes of the template module's state and its parameter names, from a
    module built on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            module = template.initialized_instance(template.module, template.get_params_for("module"))
    except Exception:  # a module that cannot be built on the meta device: checked after building
        return None
    return module_shapes(module)


def module_shapes(module: torch.nn.Module) -> tuple[dict[str, tuple], set[str], dict[str, torch.dtype]]:
    """Shapes of a module's state, its parameter names and the state's dtypes."""
    state = module.state_dict()
    shapes = {name: tuple(t.shape) for name, t in state.items()}
    return (
        shapes,
        {name for name, _ in module.named_parameters()},
        {name: t.dtype for name, t in state.items()},
    )


def check_shapes(path, payload: dict, template: tuple[dict[str, tuple], set[str]], n_networks: int) -> None:
    """Every stored module state, simplex, sample-weight matrix and buffer against the template's shapes."""
    shapes, params, dtypes = template
    states = [(f"member {i}", m["module_state"]) for i, m in enumerate(payload["members"])]
    states += [(f"mode {i}", state) for i, state in enumerate(payload.get("modes", []))]
    for where, state in states:
        for name in [*shapes, *(n for n in state if n not in shapes)]:
            stored, expected = tuple(state[name].shape) if name in state else None, shapes.get(name)
            if stored == expected and state[name].dtype != dtypes[name]:
                raise _refuse(
                    path, f"{where}'s {name!r} is {state[name].dtype}, the template's is {dtypes[name]}."
                )
            if stored != expected:
                raise ValueError(
                    f"{os.fspath(path)!r} does not fit the template it is loaded with: {where}'s {name!r} "
                    f"has shape {stored} in the file and {expected} in the template. Load it with the "
                    "template the model was fitted with (the same module and module__ settings, e.g. "
                    "module__input_dim)."
                )
    total = 0
    for i, member in enumerate(payload["members"]):
        _check_simplex(path, f"member {i}", member, shapes, params, dtypes)
        if "connector" not in payload:  # an ensemble member: one curve value per added vertex
            n_added = member["sample_weights"].shape[1] - 1
            if len(member["log_volumes"]) != n_added or len(member["vertex_times"]) != n_added:
                raise _refuse(path, f"member {i} has {n_added} added vertices but other curve lengths.")
        total += len(member["sample_weights"])
    if total != n_networks:
        raise _refuse(path, f"its members hold {total} prediction networks, its header says {n_networks}.")


def _check_simplex(path, where: str, member: dict, shapes: dict, params: set[str], dtypes: dict) -> None:
    simplex, weights = member["simplex"], member["sample_weights"]
    n_vertices = weights.shape[1]
    if set(simplex) != params:
        raise _refuse(path, f"{where}'s simplex does not hold the module's parameters.")
    for name, tensor in simplex.items():
        if tuple(tensor.shape) != (n_vertices, *shapes[name]) or tensor.dtype != dtypes[name]:
            raise _refuse(
                path,
                f"{where}'s simplex {name!r} is {tensor.dtype} of shape {tuple(tensor.shape)}; the template "
                f"needs {n_vertices} vertices of shape {shapes[name]} in {dtypes[name]}.",
            )
    if bool((weights < 0).any()) or not torch.allclose(
        weights.double().sum(1), torch.ones(len(weights)).double(), atol=1e-4
    ):
        raise _refuse(
            path, f"{where}'s sample weights are not points of the simplex (non-negative, summing to 1)."
        )
    if not weights.dtype.is_floating_point:
        raise _refuse(path, f"{where}'s sample weights are {weights.dtype}.")
    for name, buffer in member["norm_buffers"].items():
        if (
            name not in shapes
            or tuple(buffer.shape) != (len(weights), *shapes[name])
            or buffer.dtype != dtypes[name]
        ):
            raise _refuse(path, f"{where}'s statistics {name!r} have shape {tuple(buffer.shape)}.")


#: The connector's fitted arrays a file stores: one value per connector, one per mode.
CONNECTOR_CURVES = ("log_volumes_", "volumes_", "relative_heights_", "start_relative_heights_")
CONNECTOR_MODE_ARRAYS = (
    "simplex_train_loss_",
    "simplex_train_accuracy_",
    "mode_train_loss_",
    "mode_train_accuracy_",
)


def fitted_fields(path, fitted, given=None) -> dict:
    """The fitted attributes a header stores beyond the networks (``vertex_weight_decay_``,
    ``holdout_nlls_`` and ``holdout_fit_time_`` of an ESPRO fit), refused unless each has its
    type and they agree with each other and with ``given``, the stored ``vertex_weight_decay``."""
    if not isinstance(fitted, dict) or set(fitted) - {
        "vertex_weight_decay_",
        "holdout_nlls_",
        "holdout_fit_time_",
    }:
        raise _refuse(path, "its record of fitted attributes is not one skspro writes.")
    if not fitted:
        return {}
    decay = fitted.get("vertex_weight_decay_")
    number = isinstance(decay, Real) and not isinstance(decay, bool) and math.isfinite(decay) and decay >= 0
    if not (decay is None or decay == "auto" or number):
        raise _refuse(path, f"its fitted vertex_weight_decay_ {decay!r} is not a decay.")
    scores = fitted.get("holdout_nlls_", {})
    if not isinstance(scores, dict) or set(scores) not in (set(), {"auto", "0.0"}):
        raise _refuse(path, "its holdout_nlls_ are not the probe's scores per decay.")
    if not all(isinstance(v, Real) and not isinstance(v, bool) for v in scores.values()):
        raise _refuse(path, "its holdout_nlls_ are not numbers.")
    seconds = fitted.get("holdout_fit_time_", 0.0)
    if not (
        isinstance(seconds, Real) and not isinstance(seconds, bool) and (math.isnan(seconds) or seconds >= 0)
    ):
        raise _refuse(path, "its holdout_fit_time_ is not a number of seconds.")
    if scores and given != "holdout":
        raise _refuse(
            path, f"it holds a decay probe's scores, but vertex_weight_decay={given!r} probes nothing."
        )
    if given == "holdout" and scores and decay not in ("auto", 0.0):
        raise _refuse(path, f"its probe's choice {decay!r} is not one of the decays it scores.")
    return dict(fitted)


def connector_fields(path, payload: dict) -> dict:
    """The connector's record, refused unless it describes the stored complex."""
    try:
        fields = json.loads(payload["connector"])
    except ValueError:
        raise _refuse(path, "its connector record is not JSON.") from None
    n_modes, n_vertices = len(payload["modes"]), payload["members"][0]["sample_weights"].shape[1]
    n = fields.get("n_connectors") if isinstance(fields, dict) else None
    if not isinstance(n, int) or n < 0 or not isinstance(fields.get("connector_seed"), int):
        raise _refuse(path, "its connector record has no valid n_connectors / connector_seed.")
    if n_modes + n != n_vertices or len(payload["members"]) != 1:
        raise _refuse(path, f"{n_modes} modes and {n} connectors, but one simplex of {n_vertices} vertices.")
    for names, length in ((CONNECTOR_CURVES, n), (CONNECTOR_MODE_ARRAYS, n_modes)):
        for name in names:
            if not _is_numbers(fields.get(name)) or len(fields[name]) != length:
                raise _refuse(path, f"its connector record's {name!r} is not {length} numbers.")
    return fields


def template_settings(net) -> dict:
    """The module class and the ``module__`` settings of a template, as JSON
    stores them (compared at load, to name the setting that differs)."""
    module = net.module if isinstance(net.module, type) else type(net.module)
    settings = {"module": f"{module.__module__}.{module.__qualname__}"}
    for key, value in net.get_params(deep=False).items():
        if key.startswith("module__"):
            with contextlib.suppress(TypeError, ValueError):
                settings[key] = json.loads(json.dumps(value))
    return settings


def check_sizes(path, model, payload) -> None:
    """Refuse a header whose sizes disagree with the stored members."""
    n_members, sizes = len(payload["members"]), [m["simplex"] for m in payload["members"]]
    if "connector" in payload:
        return  # the connector's records are checked by connector_fields
    n_vertices = [len(next(iter(simplex.values()))) - 1 if simplex else 0 for simplex in sizes]
    wrong = model.n_members != n_members
    most = getattr(model, "n_vertices", 0)
    exact = not getattr(model, "early_stopping", False)
    wrong = wrong or any(v > most or (exact and v != most) for v in n_vertices)
    if wrong:
        raise _refuse(
            path,
            f"its header says n_members="
            f"{model.n_members}, n_vertices={most}, but it stores {n_members} members with "
            f"{n_vertices} vertices.",
        )


def _setting(settings: dict, key: str) -> str:
    return f"{key}={settings[key]!r}" if key in settings else f"{key} not set (the module's default)"


def check_template_settings(path, stored, template) -> None:
    """Name the module settings in which ``template`` differs from the file's (files of
    0.1.0 do not record them: their shapes are checked, as every file's are)."""
    if stored is None:
        return
    if not isinstance(stored, dict) or not isinstance(stored.get("module"), str):
        raise ValueError(
            f"{os.fspath(path)!r} is not a valid skspro weights file: its template record is broken."
        )
    current = template_settings(template)
    differ = sorted(key for key in set(stored) | set(current) if stored.get(key) != current.get(key))
    if differ:
        saved = ", ".join(_setting(stored, key) for key in differ)
        given = ", ".join(_setting(current, key) for key in differ)
        raise ValueError(
            f"{os.fspath(path)!r} was fitted with a template that has {saved}; the template passed to load "
            f"has {given}. Load it with the template the model was fitted with (set these on the "
            "estimator's estimator=...)."
        )
