"""Failing loudly and leaving nothing half-done: numerical faults, interrupts."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

import sklearn
import torch
from skorch.callbacks import Callback

__all__ = ["FiniteLossGuard", "atomic_fit", "interruptible", "raise_if_interrupted"]


class FiniteLossGuard(Callback):
    """Stop training with a clear error as soon as the loss is NaN or infinite.

    Parameters
    ----------
    where : str
        What is being trained, for the message (e.g. "member 2, vertex 1").
    """

    def __init__(self, where: str = "the network") -> None:
        self.where = where

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs) -> None:
        if loss is None or bool(torch.isfinite(loss.detach()).all()):
            return
        epoch = len(net.history)
        n_batch = len(net.history[-1]["batches"]) if epoch else 0
        raise FloatingPointError(
            f"The training loss became {float(loss.detach().reshape(-1)[0])} while training {self.where} "
            f"(epoch {epoch}, batch {n_batch}). Lower the learning rate (e.g. estimator__lr or vertex_lr), "
            "check X for extreme values (scale features first), or clip gradients with "
            "skorch.callbacks.GradientNormClipping in the template's callbacks."
        )


_INTERRUPTED = threading.Event()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Make Ctrl-C (SIGINT) abort a fit, even inside skorch's training loop.

    skorch ends training quietly on ``KeyboardInterrupt`` (its early
    stopping uses the same exception), which would leave half-trained
    members behind. While this is active, SIGINT also sets a flag that
    :func:`raise_if_interrupted` turns into a ``KeyboardInterrupt`` between
    training stages. Only the main thread can install signal handlers;
    elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        _INTERRUPTED.set()
        raise KeyboardInterrupt

    _INTERRUPTED.clear()
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _INTERRUPTED.clear()


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived during a skorch fit."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt("fit interrupted; the estimator was left as it was before this fit")


def atomic_fit(fit: Callable) -> Callable:
    """A fit that fails (error or interrupt) leaves the estimator unchanged.

    The estimator's attributes are restored to what they were before the
    call: unfitted, or fitted by the previous successful call.
    """

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        state = dict(self.__dict__)
        try:
            with interruptible():
                return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise

    return wrapper


_LIBRARY_DIRS = (os.path.dirname(__file__) + os.sep, os.path.dirname(sklearn.__file__) + os.sep)


def caller_stacklevel() -> int:
    """``stacklevel`` for a warning raised by the caller of this function that
    points at the first frame outside skspro and scikit-learn (the user's
    call), however deep the estimators' wrappers nest."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    return level
