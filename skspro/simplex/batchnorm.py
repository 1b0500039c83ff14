"""BatchNorm statistics for points of a simplex.

Running statistics belong to a point in weight space, not to the simplex: a
network sampled from a simplex sees different activations than the vertex
the statistics were collected at. :func:`recompute_norm_statistics`
re-estimates them for every stored sample point with one pass over training
data (a cumulative average, as ``torch.optim.swa_utils.update_bn`` does),
leaving the user's module untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import torch
from torch.func import functional_call
from torch.nn.modules.batchnorm import _NormBase

__all__ = ["norm_buffer_names", "recompute_norm_statistics"]


def _tracking_norm_layers(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [
        (name, m) for name, m in module.named_modules() if isinstance(m, _NormBase) and m.track_running_stats
    ]


def norm_buffer_names(module: torch.nn.Module) -> frozenset[str]:
    """Names of the running-statistics buffers of normalisation layers.

    These are the buffers of every BatchNorm / InstanceNorm layer that tracks
    running statistics (``running_mean``, ``running_var``,
    ``num_batches_tracked``). Empty when the module has none.
    """
    names = set()
    for prefix, layer in _tracking_norm_layers(module):
        for buffer_name, buffer in layer.named_buffers(recurse=False):
            if buffer is not None:
                names.add(f"{prefix}.{buffer_name}" if prefix else buffer_name)
    return frozenset(names)


def recompute_norm_statistics(
    module: torch.nn.Module,
    params: Mapping[str, torch.Tensor],
    buffers: Mapping[str, torch.Tensor],
    batches: Iterable[torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Re-estimate normalisation statistics for ``S`` networks.

    Parameters
    ----------
    module : torch.nn.Module
        The architecture; it is copied, not modified.
    params : dict of str to Tensor of shape (S, ...)
        Parameters of the ``S`` networks.
    buffers : dict of str to Tensor
        The module's buffers (unbatched); normalisation statistics among them
        are replaced, others are passed through.
    batches : iterable of Tensor
        Training inputs, iterated once per network (e.g. a list of
        minibatches already on the right device).

    Returns
    -------
    dict of str to Tensor of shape (S, ...)
        The re-estimated buffers of :func:`norm_buffer_names`, stacked over
        networks. Empty if the module has no such layers.
    """
    names = norm_buffer_names(module)
    if not names:
        return {}
    batches = list(batches)
    worker = copy.deepcopy(module)
    worker.eval()
    for _, layer in _tracking_norm_layers(worker):
        layer.momentum = None  # cumulative moving average over the pass
        layer.train()
    n_networks = next(iter(params.values())).shape[0]
    stacked: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    with torch.no_grad():
        for s in range(n_networks):
            p = {name: t[s] for name, t in params.items()}
            b = {name: t.clone() for name, t in buffers.items()}
            for name in names:
                if name.endswith("running_var"):
                    b[name].fill_(1.0)
                else:
                    b[name].zero_()
            for x in batches:
                functional_call(worker, (p, b), (x,))
            for name in names:
                stacked[name].append(b[name])
    return {name: torch.stack(values) for name, values in stacked.items()}
