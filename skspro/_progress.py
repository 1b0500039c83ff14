"""Progress bars and the verbosity of members: one ``verbose`` on the ensemble governs both.

The levels of an ensemble's ``verbose`` (:data:`VERBOSE_LEVELS`):

* ``0`` (default): silent, members included;
* ``1``: a progress bar over the members (advancing as each one finishes)
  and, inside each member, over its vertices;
* ``2``: also a bar over the epochs of every member's and vertex's fit;
* ``3``: also skorch's own epoch table of every member.

Bars are `tqdm <https://tqdm.github.io>`_ bars on stderr, as skorch's
``ProgressBar`` draws them. Inside a joblib worker (``n_jobs`` > 1, a
parallel ``GridSearchCV``, a Dask cluster) no bar is drawn whatever the
level: bars from concurrent workers would overwrite each other. A member's
skorch ``verbose`` follows the ensemble's (:func:`member_verbose`) unless the
template sets a value other than skorch's default, which is then kept.

The API, all of it private to skspro:

* :func:`show_progress` -- whether to draw bars at a level, here;
* :func:`progress_bar` -- a tqdm iterator over an iterable, or the iterable
  itself;
* :func:`member_verbose` -- the skorch ``verbose`` of a member's clone;
* :func:`epoch_progress_callbacks` -- skorch callbacks to add to a member's
  or vertex's net (a bar over its epochs, at level 2);
* :class:`EpochProgress` -- that callback;
* :class:`StageProgress` -- a bar over the named stages of a long command.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable
from typing import TypeVar

from skorch import NeuralNet
from skorch.callbacks import Callback

__all__ = [
    "EPOCH_BARS",
    "MEMBER_BARS",
    "SKORCH_TABLES",
    "VERBOSE_LEVELS",
    "EpochProgress",
    "StageProgress",
    "epoch_progress_callbacks",
    "in_parallel_worker",
    "member_verbose",
    "progress_bar",
    "show_progress",
]

T = TypeVar("T")

MEMBER_BARS = 1  # bars over members and vertices
EPOCH_BARS = 2  # also over the epochs of each fit
SKORCH_TABLES = 3  # also skorch's epoch table of each member
VERBOSE_LEVELS = {
    0: "silent",
    MEMBER_BARS: "progress bars over members and vertices",
    EPOCH_BARS: "also a bar over the epochs of each member and vertex",
    SKORCH_TABLES: "also skorch's epoch table of each member",
}


def _skorch_default_verbose() -> int:
    return inspect.signature(NeuralNet.__init__).parameters["verbose"].default


def in_parallel_worker() -> bool:
    """Whether this code runs inside a joblib worker (threads, processes or a Dask worker).

    joblib runs each task under a backend whose ``nesting_level`` is at least
    1 (the main program is at 0); a task on a Dask cluster is recognised by
    ``distributed.get_worker()``. A sequential joblib call (``n_jobs=1``,
    e.g. ``GridSearchCV`` without ``n_jobs``) runs in the caller and is not a
    worker.
    """
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if (getattr(backend, "nesting_level", None) or 0) > 0:
        return True
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            distributed.get_worker()
        except ValueError:
            return False
        return True
    return False


def show_progress(verbose: int, level: int = MEMBER_BARS) -> bool:
    """Whether bars of ``level`` are drawn for this ``verbose``: ``verbose >= level``, outside workers."""
    return bool(verbose) and int(verbose) >= level and not in_parallel_worker()


def progress_bar(
    iterable: Iterable[T],
    *,
    verbose: int,
    level: int = MEMBER_BARS,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    leave: bool = True,
) -> Iterable[T]:
    """A tqdm bar over ``iterable`` when :func:`show_progress`, else ``iterable`` itself.

    Parameters
    ----------
    iterable : iterable
        What to iterate over (e.g. joblib's ``Parallel(return_as="generator")``
        output, so the bar advances as each job finishes).
    verbose : int
        The estimator's ``verbose``.
    level : int, default=1
        The least ``verbose`` that shows this bar.
    total : int, optional
        Length, for iterables without ``len``.
    desc : str, optional
        Label in front of the bar.
    unit : str, default="it"
    leave : bool, default=True
        Keep the finished bar on screen (``False`` for inner bars).

    Returns
    -------
    iterable
        The same items in the same order.
    """
    if not show_progress(verbose, level):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)


def member_verbose(ensemble_verbose: int, template_verbose: int) -> int:
    """The skorch ``verbose`` a member's clone of the template gets.

    A template whose ``verbose`` differs from skorch's default (1) was set
    on purpose, and is kept (``0`` keeps members silent even at
    ``verbose=3``). A template at skorch's default -- as any
    ``NeuralNetClassifier(...)`` that does not mention ``verbose`` -- prints
    its epoch table only when the ensemble's ``verbose`` is 3 or more;
    otherwise it is silenced (0). Inside a joblib worker, members are silent.

    Parameters
    ----------
    ensemble_verbose : int
        The ensemble's ``verbose``.
    template_verbose : int
        ``template.verbose`` of the skorch template.

    Returns
    -------
    int
        The value for ``clone.set_params(verbose=...)``.
    """
    if template_verbose != _skorch_default_verbose():
        return template_verbose
    return 1 if show_progress(ensemble_verbose, SKORCH_TABLES) else 0


def epoch_progress_callbacks(verbose: int, desc: str) -> list[tuple[str, object]]:
    """Callbacks to add to a member's or vertex's skorch net: a bar over its epochs at ``verbose >= 2``.

    Parameters
    ----------
    verbose : int
        The ensemble's ``verbose``.
    desc : str
        Label of the bar (e.g. ``"member 2/3"`` or ``"member 2/3, vertex 1"``).

    Returns
    -------
    list of (str, skorch Callback)
        Empty when no bar is to be drawn; named ``"skspro_epoch_progress"``.
    """
    if not show_progress(verbose, EPOCH_BARS):
        return []
    return [("skspro_epoch_progress", EpochProgress(desc))]


class EpochProgress(Callback):
    """A tqdm bar over the epochs of one skorch fit, with the last training loss.

    Parameters
    ----------
    desc : str, default="epochs"
        Label of the bar.
    loss_key : str, default="train_loss"
        History key shown after the bar.
    leave : bool, default=False
        Keep the finished bar on screen (inner bars vanish by default).
    """

    def __init__(self, desc: str = "epochs", loss_key: str = "train_loss", leave: bool = False):
        self.desc = desc
        self.loss_key = loss_key
        self.leave = leave

    def initialize(self):
        self.bar_ = None
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(
            total=net.max_epochs, desc=self.desc, unit="epoch", leave=self.leave, dynamic_ncols=True
        )

    def on_epoch_end(self, net, **kwargs):
        if self.bar_ is None:
            return
        row = net.history[-1]
        if self.loss_key in row:
            self.bar_.set_postfix({self.loss_key: f"{row[self.loss_key]:.4f}"}, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if self.bar_ is not None:
            self.bar_.close()
            self.bar_ = None

    def __getstate__(self):  # a fitted net is pickled without its (closed) bar
        state = self.__dict__.copy()
        state["bar_"] = None
        return state


class StageProgress:
    """A bar over the named stages of a long command (``skspro report``, ``benchmark``, ``demo``).

    Parameters
    ----------
    total : int
        Number of stages.
    verbose : int
        Draw the bar when > 0 (outside joblib workers).
    desc : str
        Label of the bar.

    Examples
    --------
    >>> with StageProgress(2, verbose=0, desc="report") as progress:
    ...     progress.stage("training")
    ...     progress.stage("writing files")
    >>> progress.done
    2
    """

    def __init__(self, total: int, *, verbose: int, desc: str):
        self.total = total
        self.verbose = verbose
        self.desc = desc
        self.done = 0
        self._bar = None
        self._open = False

    def __enter__(self) -> StageProgress:
        if show_progress(self.verbose):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit="stage", dynamic_ncols=True)
        return self

    def stage(self, name: str) -> None:
        """Finish the current stage (if any) and start ``name``."""
        self._finish_current()
        self._open = True
        if self._bar is not None:
            self._bar.set_postfix_str(name)

    def _finish_current(self) -> None:
        if self._open:
            self.done += 1
            self._open = False
            if self._bar is not None:
                self._bar.update(1)

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self._finish_current()
        if self._bar is not None:
            self._bar.close()
