"""The volume of a connecting complex as connectors are added (the dimensionality experiment)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_volume_curve"]


def plot_volume_curve(connector, *, collapse_ratio: float | None = None, ax: Axes | None = None) -> Axes:
    """Log-volume and relative height of a connector's complex after each connector.

    The paper's dimensionality experiment (Benton et al., 2021, Sec. 4):
    the complex's volume grows while each new connector finds a new
    direction of low loss and collapses once it does not. The log-volume
    is drawn on the left axis, the relative height of each new connector
    (its height above the older vertices over the distance between modes,
    ``relative_heights_``) on the right axis, with the height each connector
    started from (``start_relative_heights_``) dotted; the collapse
    (``collapse_at_``, set by ``grow_until_collapse``) is marked by a
    vertical line.

    Parameters
    ----------
    connector : fitted SPROConnector
    collapse_ratio : float, default=None
        Draw this relative height (the threshold of ``grow_until_collapse``)
        as a horizontal line.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; ``None`` makes a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        The log-volume axes; the relative heights are on its twin
        (``ax.right_ax``).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> from skspro.plotting import plot_volume_curve
    >>> fitted = SimpleNamespace(log_volumes_=np.array([-5.0, -3.0, -40.0]),
    ...                          relative_heights_=np.array([0.3, 0.2, 0.01]),
    ...                          start_relative_heights_=np.array([0.01, 0.01, 0.01]), collapse_at_=3)
    >>> ax = plot_volume_curve(fitted)
    >>> ax.lines[0].get_ydata().tolist()
    [-5.0, -3.0, -40.0]
    """
    from ._calibration import _axes

    if not hasattr(connector, "log_volumes_"):
        raise ValueError(
            "plot_volume_curve needs a fitted SPROConnector (with log_volumes_); "
            f"got {type(connector).__name__}."
        )
    log_volumes = np.asarray(connector.log_volumes_, dtype=float)
    heights = np.asarray(connector.relative_heights_, dtype=float)
    start = np.asarray(getattr(connector, "start_relative_heights_", np.full_like(heights, np.nan)), float)
    counts = np.arange(1, len(log_volumes) + 1)
    ax = _axes(ax)
    (volume_line,) = ax.plot(counts, log_volumes, marker="o", color="C0", label="log volume")
    right = ax.twinx()
    (height_line,) = right.plot(counts, heights, marker="s", color="C1", label="relative height")
    handles = [volume_line, height_line]
    if np.isfinite(start).any():
        (start_line,) = right.plot(counts, start, linestyle=":", color="C1", label="height at start")
        handles.append(start_line)
    if collapse_ratio is not None:
        handles.append(
            right.axhline(
                collapse_ratio,
                color="0.5",
                linestyle="--",
                linewidth=1,
                label=f"collapse ratio {collapse_ratio:g}",
            )
        )
    collapse = getattr(connector, "collapse_at_", None)
    if collapse is not None:
        handles.append(ax.axvline(collapse, color="C3", linestyle="--", label=f"collapse at {collapse}"))
    ax.set(xlabel="connectors", ylabel="log volume of the complex", title="Volume as connectors are added")
    ax.set_xticks(counts)
    right.set_ylabel("relative height of the new connector")
    right.set_ylim(bottom=0)
    ax.legend(handles=handles, fontsize="small", loc="best")
    ax.right_ax = right
    return ax
