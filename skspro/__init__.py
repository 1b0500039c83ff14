"""skspro: loss-surface simplex ensembles (SPRO / ESPRO) for scikit-learn.

Public estimators:

* :class:`ESPROClassifier` -- an ensemble of low-loss simplexes;
* :class:`DeepEnsembleClassifier` -- the deep-ensemble baseline;
* :class:`SPROConnector` -- a low-loss simplicial complex connecting modes.

The mathematics lives in :mod:`skspro.simplex`, calibration metrics in
:mod:`skspro.metrics`, ready-made modules in :mod:`skspro.modules`.
"""

__version__ = "0.1.0"

from ._base import default_estimator  # noqa: E402
from ._connector import SPROConnector  # noqa: E402
from ._ensemble import DeepEnsembleClassifier  # noqa: E402
from ._espro import ESPROClassifier  # noqa: E402
from ._io import load, save  # noqa: E402

__all__ = [
    "DeepEnsembleClassifier",
    "ESPROClassifier",
    "SPROConnector",
    "default_estimator",
    "load",
    "save",
    "__version__",
]
