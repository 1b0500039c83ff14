"""Figures for calibration, dataset shift and uncertainty (matplotlib).

* :func:`reliability_diagram` -- accuracy against confidence, several models
  on one Axes;
* :func:`plot_shift_curve` -- accuracy / ECE / NLL against corruption
  severity;
* :func:`plot_decision_surface` -- probability, entropy or mutual
  information over the plane of 2-D data (the two-spirals figure).

Every function draws into ``ax`` when given (a new pyplot figure otherwise),
returns the Axes and never calls ``show()``; save with
``ax.figure.savefig(path)``.
"""

from ._calibration import plot_shift_curve, reliability_diagram
from ._decision_surface import plot_decision_surface

__all__ = ["plot_decision_surface", "plot_shift_curve", "reliability_diagram"]
