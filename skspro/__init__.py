"""skspro: loss-surface simplex ensembles (SPRO / ESPRO) for scikit-learn.

Public estimators:

* :class:`ESPROClassifier` -- an ensemble of low-loss simplexes;
* :class:`DeepEnsembleClassifier` -- the deep-ensemble baseline;
* :class:`SPROConnector` -- a low-loss simplicial complex connecting modes.

The mathematics lives in :mod:`skspro.simplex`, calibration metrics in
:mod:`skspro.metrics`, ready-made modules in :mod:`skspro.modules`.

The names above are imported on first use (PEP 562), so that ``import
skspro`` -- and the ``skspro`` command's ``--help`` -- does not load PyTorch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the private module that defines it
_LAZY = {
    "DeepEnsembleClassifier": "._ensemble",
    "ESPROClassifier": "._espro",
    "SPROConnector": "._connector",
    "default_estimator": "._base",
    "load": "._io",
    "save": "._io",
}

__all__ = [
    "DeepEnsembleClassifier",
    "ESPROClassifier",
    "SPROConnector",
    "default_estimator",
    "load",
    "save",
    "__version__",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
