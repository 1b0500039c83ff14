"""skspro: loss-surface simplex ensembles (SPRO / ESPRO) for scikit-learn.

Public estimators:

* :class:`ESPROClassifier` -- an ensemble of low-loss simplexes;
* :class:`DeepEnsembleClassifier` -- the deep-ensemble baseline;
* :class:`SPROConnector` -- a low-loss simplicial complex connecting modes.

The mathematics lives in :mod:`skspro.simplex`, calibration metrics in
:mod:`skspro.metrics`, ready-made modules in :mod:`skspro.modules`.
"""

from ._base import default_estimator
from ._connector import SPROConnector
from ._ensemble import DeepEnsembleClassifier
from ._espro import ESPROClassifier

__version__ = "0.1.0"

__all__ = [
    "DeepEnsembleClassifier",
    "ESPROClassifier",
    "SPROConnector",
    "default_estimator",
    "__version__",
]
