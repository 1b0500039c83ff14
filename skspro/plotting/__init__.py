"""Figures for calibration, dataset shift and uncertainty (matplotlib).

* :func:`reliability_diagram` -- accuracy against confidence, several models
  on one Axes;
* :func:`plot_shift_curve` -- accuracy / ECE / NLL against corruption
  severity;
* :func:`plot_loss_surface` -- training loss over the plane through three
  weight vectors, the simplex drawn on it (the paper's figure);
  :func:`loss_surface_grid` returns the grid for plotting it yourself;
* :func:`plot_volume_curve` -- log-volume and relative height of a
  connector's complex after each connector, the collapse marked;
* :func:`plot_decision_surface` -- probability, entropy or mutual
  information over the plane of 2-D data (the two-spirals figure).

Every function draws into ``ax`` when given (a new pyplot figure otherwise),
returns the Axes and never calls ``show()``; save with
``ax.figure.savefig(path)``.
"""

from ._calibration import plot_shift_curve, reliability_diagram
from ._decision_surface import plot_decision_surface
from ._loss_surface import LossSurface, loss_surface_grid, plot_loss_surface
from ._volume import plot_volume_curve

__all__ = [
    "LossSurface",
    "loss_surface_grid",
    "plot_decision_surface",
    "plot_loss_surface",
    "plot_shift_curve",
    "plot_volume_curve",
    "reliability_diagram",
]
