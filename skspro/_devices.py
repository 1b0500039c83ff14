"""Where each member trains: device names, "auto", several GPUs."""

from __future__ import annotations

import re

import torch

__all__ = ["check_template_device", "resolve_devices"]

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|auto)$")


def resolve_devices(device: str | None, n_jobs: int, n_members: int) -> list[str | None]:
    """One torch device name per member.

    Parameters
    ----------
    device : {None, "cpu", "cuda", "cuda:N", "auto"}
        ``None`` keeps the template's own ``device`` (one entry ``None`` per
        member). ``"auto"`` is ``"cuda"`` when a GPU is visible, else
        ``"cpu"``. ``"cuda"`` with several visible GPUs and ``n_jobs > 1``
        spreads the members round-robin over ``cuda:0 .. cuda:G-1``, so that
        parallel jobs do not share one GPU; with ``n_jobs == 1`` every member
        uses the current GPU. ``"cuda:N"`` pins every member to GPU ``N``.
    n_jobs : int
        Effective number of parallel jobs.
    n_members : int

    Returns
    -------
    list of str or None
        Resolved in the calling process: under a distributed joblib backend
        every worker must see the same GPUs (one worker per GPU machine, or
        name the device explicitly).

    Raises
    ------
    ValueError
        For an unknown name, or a CUDA device that this machine does not have.
    """
    if device is None:
        return [None] * n_members
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ValueError(f"device must be None, 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}.")
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "auto":
        device = "cuda" if n_gpus else "cpu"
    if device == "cpu":
        return ["cpu"] * n_members
    _check_gpu(device, n_gpus, whose="", fix="Use device='auto' or 'cpu'.")
    if device != "cuda":
        return [device] * n_members
    if n_jobs > 1 and n_gpus > 1:
        return [f"cuda:{i % n_gpus}" for i in range(n_members)]
    return ["cuda"] * n_members


def check_template_device(template) -> None:
    """Refuse a template whose own ``device`` is a GPU this machine lacks
    (used when the estimator's ``device`` is None, so the template's is kept):
    the checks and messages of the estimator's ``device``, before any
    training, instead of torch's assertion from inside the first member."""
    name = str(getattr(template, "device", None) or "cpu")
    if name.startswith("cuda"):
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        fix = "Set device='cpu' on the template, or pass device='auto' to the estimator."
        _check_gpu(name, n_gpus, whose="The template's ", fix=fix)


def _check_gpu(device: str, n_gpus: int, *, whose: str, fix: str) -> None:
    """Refuse ``"cuda"`` / ``"cuda:N"`` that this machine's ``n_gpus`` cannot serve."""
    if n_gpus == 0:
        raise ValueError(
            f"{whose}device={device!r} asks for a GPU, but torch sees none on this machine "
            f"(torch.cuda.is_available() is False). {fix}"
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= n_gpus:
        raise ValueError(
            f"{whose}device={device!r}, but this machine has {n_gpus} GPU(s): cuda:0..cuda:{n_gpus - 1}."
        )
