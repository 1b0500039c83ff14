"""Evaluate S networks of one architecture as one network with S-wide layers.

:func:`torch.func.vmap` evaluates any module on stacked parameters, but every
call re-traces the module in Python; for small batches that fixed cost
dominates (it is most of ``predict_proba``'s time at batch 1). Most
classifiers people ensemble are chains of a few standard layers, and those
have direct stacked forms:

* ``Linear``: the first one (all networks see the same rows) is *one* matrix
  product with the ``S`` weight matrices side by side; later ones are one
  batched product (``baddbmm``).
* ``Conv2d``: the first one is one convolution with ``S * out`` filters;
  later ones one grouped convolution with ``S`` times the groups, on feature
  maps kept as ``(n, S * channels, H, W)``.
* ``BatchNorm`` (eval), pooling and element-wise activations act per channel
  or per element, so they run once on the wide tensor (normalisation
  statistics may differ per network).

:func:`stacked_forward` reads the chain from the module's structure: a
plain ``nn.Sequential`` is the chain of its children, and any other module
declares its chain with a ``forward_chain()`` method (as
:class:`skspro.modules.MLP` and :class:`~skspro.modules.SmallCNN` do). Then it
runs the chain with a handful of kernels whatever ``S`` is. Anything else
(custom ``forward`` without ``forward_chain``, other layers, hooks, train
mode) raises :class:`Unsupported`, and
:func:`~skspro.simplex.forward_networks` falls back to vmap or the loop. The
structure is read on every call (no tracing, no cache): it cannot go stale
and does not touch other threads. Tests check it equals the loop on every
supported layer.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Unsupported", "stacked_forward", "supports_stacked"]

# Layers without parameters that act on each element (or are the identity
# in eval mode): they run unchanged on the wide tensor.
_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.AlphaDropout,
)
# Per-channel pooling of (n, C, H, W) maps: they run on (n, S * C, H, W).
_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_MODE_DEPENDENT = (nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)


class Unsupported(Exception):
    """The module is not a chain of layers with a stacked form."""


def _plan(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The module's forward as a list of (qualified name, layer), read from its structure.

    A plain ``nn.Sequential`` is the chain of its children; any other module
    must say what its forward does with a ``forward_chain()`` method returning
    its layers (or Sequentials of them) in order, as :class:`skspro.modules.MLP`
    does. Nothing is traced and nothing is cached: the plan is rebuilt on
    every call from the module as it is then, so it can neither go stale nor
    disturb other threads. Raises :class:`Unsupported` otherwise.
    """
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        raise Unsupported("global forward hooks are installed")
    steps: list[tuple[str, nn.Module]] = []

    def walk(node: nn.Module, name: str, top: bool) -> None:
        if node._forward_hooks or node._forward_pre_hooks:
            raise Unsupported(f"{type(node).__name__} has forward hooks")
        prefix = f"{name}." if name else ""
        if isinstance(node, nn.Sequential) and type(node).forward is nn.Sequential.forward:
            for child_name, child in node._modules.items():
                walk(child, prefix + child_name, False)
            return
        chain = getattr(node, "forward_chain", None)
        if chain is not None:
            children = {id(m): n for n, m in node._modules.items() if m is not None}
            for child in chain():
                child_name = children.get(id(child))
                if child_name is None and next(child.parameters(), None) is not None:
                    # a deeper submodule: its qualified name below this node
                    child_name = next((n for n, m in node.named_modules() if m is child), None)
                walk(child, prefix + child_name if child_name is not None else "", False)
            return
        if top or node._modules:
            raise Unsupported(f"{type(node).__name__} is not a chain of layers (no forward_chain())")
        _check_layer(node)
        if not name and node._parameters:
            raise Unsupported(f"a {type(node).__name__} with parameters is not a submodule of the model")
        steps.append((name, node))

    walk(module, "", True)
    return steps


def _check_layer(layer: nn.Module) -> None:
    if isinstance(layer, _ELEMENTWISE + _POOLING):  # called as themselves: any forward is honoured
        return
    # Layers computed here by their functional form: only with the forward of
    # torch's own class (a subclass that overrides it is evaluated as written,
    # by vmap or the loop).
    for base in (nn.Flatten, nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d):
        if isinstance(layer, base) and type(layer).forward is not base.forward:
            raise Unsupported(f"{type(layer).__name__} overrides {base.__name__}.forward")
    if isinstance(layer, nn.Conv2d) and type(layer)._conv_forward is not nn.Conv2d._conv_forward:
        raise Unsupported(f"{type(layer).__name__} overrides Conv2d._conv_forward")
    if isinstance(layer, nn.Flatten | nn.Linear):
        return
    if isinstance(layer, nn.Conv2d) and layer.padding_mode == "zeros" and isinstance(layer.padding, tuple):
        return
    if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d) and layer.track_running_stats:
        return
    raise Unsupported(f"{type(layer).__name__} has no stacked form")


def _in_eval_mode(module: nn.Module, steps: list[tuple[str, nn.Module]]) -> bool:
    return not module.training and not any(
        layer.training for _, layer in steps if isinstance(layer, _MODE_DEPENDENT)
    )


def supports_stacked(module: nn.Module) -> bool:
    """Whether :func:`stacked_forward` can evaluate ``module`` (in eval mode).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    bool

    Examples
    --------
    >>> from skspro.modules import MLP
    >>> from skspro.simplex import supports_stacked
    >>> supports_stacked(MLP(4, 3).eval())
    True
    >>> supports_stacked(MLP(4, 3).train())
    False
    """
    return eval_plan(module) is not None


class _Wide:
    """The activations of S networks in one tensor.

    ``layout`` is ``"shared"`` (n, ...): the same for every network (the
    input, until the first layer with parameters); ``"stacked"`` (S, n, ...);
    or ``"grouped"`` (n, S * C, H, W): feature maps side by side by channel.
    """

    def __init__(self, tensor: torch.Tensor, layout: str, n_networks: int) -> None:
        self.tensor, self.layout, self.S = tensor, layout, n_networks

    def as_stacked(self) -> torch.Tensor:
        t = self.tensor
        if self.layout == "shared":
            return t.unsqueeze(0).expand(self.S, *t.shape)
        if self.layout == "grouped":
            n, sc = t.shape[:2]
            return t.reshape(n, self.S, sc // self.S, *t.shape[2:]).transpose(0, 1)
        return t

    def as_grouped(self) -> torch.Tensor:
        t = self.tensor
        if self.layout == "grouped":
            return t
        if self.layout == "shared":
            return t.repeat(1, self.S, *([1] * (t.dim() - 2)))
        S, n = t.shape[:2]
        return t.transpose(0, 1).reshape(n, S * t.shape[2], *t.shape[3:])


def _linear(wide: _Wide, weight: torch.Tensor, bias: torch.Tensor | None) -> _Wide:
    S, out_features, in_features = weight.shape
    if wide.layout == "shared" and wide.tensor.dim() == 2:
        n = wide.tensor.shape[0]
        flat_bias = bias.reshape(S * out_features) if bias is not None else None
        y = F.linear(wide.tensor, weight.reshape(S * out_features, in_features), flat_bias)
        return _Wide(y.reshape(n, S, out_features).transpose(0, 1), "stacked", S)
    x = wide.as_stacked()
    if x.dim() != 3:
        raise Unsupported("Linear on inputs with more than one feature axis")
    if bias is None:
        return _Wide(torch.bmm(x, weight.transpose(1, 2)), "stacked", S)
    return _Wide(torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2)), "stacked", S)


def _conv2d(wide: _Wide, layer: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> _Wide:
    S, out_channels = weight.shape[:2]
    flat_weight = weight.reshape(S * out_channels, *weight.shape[2:])
    flat_bias = bias.reshape(S * out_channels) if bias is not None else None
    options = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
    if wide.layout == "shared" and layer.groups == 1:
        y = F.conv2d(wide.tensor, flat_weight, flat_bias, groups=1, **options)
    else:
        y = F.conv2d(wide.as_grouped(), flat_weight, flat_bias, groups=S * layer.groups, **options)
    return _Wide(y, "grouped", S)


def _batch_norm(
    wide: _Wide, layer: nn.Module, name: str, params: Mapping, buffers: Mapping, batched: frozenset
) -> _Wide:
    S = wide.S

    def per_network(key: str, value: torch.Tensor | None) -> torch.Tensor | None:
        if value is None:
            return None
        if key in batched or key in params:
            return value.reshape(S * value.shape[-1])
        return value.repeat(S)

    mean = per_network(f"{name}.running_mean", buffers.get(f"{name}.running_mean"))
    var = per_network(f"{name}.running_var", buffers.get(f"{name}.running_var"))
    weight = per_network(f"{name}.weight", params.get(f"{name}.weight"))
    bias = per_network(f"{name}.bias", params.get(f"{name}.bias"))
    if isinstance(layer, nn.BatchNorm2d):
        if wide.tensor.dim() != (4 if wide.layout != "stacked" else 5):
            raise Unsupported("BatchNorm2d on inputs that are not (n, C, H, W) maps")
        x = wide.as_grouped()
        return _Wide(F.batch_norm(x, mean, var, weight, bias, False, 0.0, layer.eps), "grouped", S)
    x = wide.as_stacked()
    if x.dim() != 3:
        raise Unsupported("BatchNorm1d on inputs with a length axis")
    n = x.shape[1]
    wide_rows = x.transpose(0, 1).reshape(n, S * x.shape[2])
    y = F.batch_norm(wide_rows, mean, var, weight, bias, False, 0.0, layer.eps)
    return _Wide(y.reshape(n, S, x.shape[2]).transpose(0, 1), "stacked", S)


def _flatten(wide: _Wide, start_dim: int = 1, end_dim: int = -1) -> _Wide:
    if start_dim != 1 or end_dim != -1:
        raise Unsupported("flatten other than of all features")
    if wide.layout == "shared":
        return _Wide(wide.tensor.flatten(1), "shared", wide.S)
    x = wide.as_stacked()
    return _Wide(x.flatten(2), "stacked", wide.S)


def stacked_forward(
    module: nn.Module,
    params: Mapping[str, torch.Tensor],
    buffers: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    batched_buffers: frozenset[str] = frozenset(),
) -> torch.Tensor:
    """Outputs (S, n, ...) of ``S`` networks, evaluated as one wide network.

    Same arguments and result as
    :func:`~skspro.simplex.forward_networks_loop`, for modules in eval mode
    that are chains of supported layers (see :mod:`skspro.simplex.stacked`).

    Parameters
    ----------
    module : torch.nn.Module
        The architecture, in eval mode; its own parameters are not used.
    params : dict of str to Tensor of shape (S, ...)
        Stacked parameters of the ``S`` networks.
    buffers : dict of str to Tensor
        Buffers; those named in ``batched_buffers`` have a leading ``S`` axis.
    x : Tensor of shape (n, ...)
    batched_buffers : frozenset of str, default=frozenset()

    Returns
    -------
    Tensor of shape (S, n, ...)

    Raises
    ------
    Unsupported
        If the module (or a tensor's shape) has no stacked form.

    Examples
    --------
    >>> import torch
    >>> from skspro.modules import MLP
    >>> from skspro.simplex import StackedVertices, stacked_forward
    >>> net, other = MLP(4, 3, hidden_units=(8,)).eval(), MLP(4, 3, hidden_units=(8,))
    >>> simplex = StackedVertices.from_module(net).append(dict(other.named_parameters()))
    >>> params = simplex.combine(torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]))
    >>> stacked_forward(net, params, dict(net.named_buffers()), torch.zeros(5, 4)).shape
    torch.Size([3, 5, 3])
    """
    steps = _plan(module)
    if not _in_eval_mode(module, steps):
        raise Unsupported("train-mode layers (batch statistics, dropout) differ per network")
    return _run(steps, params, buffers, x, frozenset(batched_buffers))


def eval_plan(module: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The module's chain if :func:`stacked_forward` can evaluate it now, else ``None``."""
    try:
        steps = _plan(module)
    except Unsupported:
        return None
    return steps if _in_eval_mode(module, steps) else None


def _run(
    steps: list[tuple[str, nn.Module]],
    params: Mapping[str, torch.Tensor],
    buffers: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    batched_buffers: frozenset[str],
) -> torch.Tensor:
    """Evaluate a chain read by :func:`_plan` on stacked parameters."""
    S = next(iter(params.values())).shape[0]
    wide = _Wide(x, "shared", S)
    for target, layer in steps:
        weight, bias = params.get(f"{target}.weight"), params.get(f"{target}.bias")
        if isinstance(layer, nn.Linear | nn.Conv2d) and weight is None:
            raise Unsupported(f"no stacked weight for {target}")
        if isinstance(layer, nn.Linear):
            wide = _linear(wide, weight, bias)
        elif isinstance(layer, nn.Conv2d):
            wide = _conv2d(wide, layer, weight, bias)
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            wide = _batch_norm(wide, layer, target, params, buffers, batched_buffers)
        elif isinstance(layer, nn.Flatten):
            wide = _flatten(wide, layer.start_dim, layer.end_dim)
        elif isinstance(layer, _POOLING):
            if wide.layout == "stacked":
                wide = _Wide(wide.as_grouped(), "grouped", S)
            wide = _Wide(layer(wide.tensor), wide.layout, S)
        else:  # element-wise
            wide = _Wide(layer(wide.tensor), wide.layout, S)
    return wide.as_stacked()


def run_single(
    steps: list[tuple[str, nn.Module]],
    params: Mapping[str, torch.Tensor],
    buffers: Mapping[str, torch.Tensor],
    x: torch.Tensor,
) -> torch.Tensor:
    """Evaluate one network of a chain read by :func:`_plan` with its own parameters.

    The same layer calls as the module's own forward (so the same numbers
    as :func:`torch.func.functional_call`), without swapping anything into
    the module: safe while other threads use it.
    """
    for target, layer in steps:
        weight, bias = params.get(f"{target}.weight"), params.get(f"{target}.bias")
        if isinstance(layer, nn.Linear):
            x = F.linear(x, weight, bias)
        elif isinstance(layer, nn.Conv2d):
            x = F.conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            mean, var = buffers.get(f"{target}.running_mean"), buffers.get(f"{target}.running_var")
            x = F.batch_norm(x, mean, var, weight, bias, False, 0.0, layer.eps)
        else:  # element-wise, pooling, flatten: no parameters
            x = layer(x)
    return x
