"""Post-hoc calibrators from netcal, as scikit-learn estimators.

:class:`NetcalCalibratedClassifier` wraps a fitted (frozen) classifier and
learns a map from its probabilities to calibrated ones on held-out data,
the way :class:`sklearn.calibration.CalibratedClassifierCV` does with a
:class:`~sklearn.frozen.FrozenEstimator`. The maps are netcal's (Küppers et
al., 2020): histogram binning, isotonic regression, beta calibration,
Bayesian binning into quantiles (BBQ) and ensembles of near-isotonic
regression (ENIR). Temperature scaling stays scikit-learn's
(``CalibratedClassifierCV(FrozenEstimator(model), method="temperature")``),
so :func:`skspro.metrics.calibration_report` can set raw,
temperature-scaled and every netcal calibrator side by side.

This module sits apart from :mod:`skspro.metrics` because a calibrator is
an estimator (it wraps a classifier and is fitted); the metrics never import
estimators.

netcal's traps, and how they are guarded here:

* Probabilities with at most two columns are a *binary* problem to netcal:
  it keeps only the last column and returns one. Two-class models are
  given and given back as ``[1 - p, p]``.
* Its temperature scaling with the default method, fitted on float32
  probabilities (what a torch model gives), returns them unchanged: the
  optimiser never moves (measured with netcal 1.4, tested). skspro does
  not use it (temperature scaling is scikit-learn's), and every input is
  cast to float64 before netcal sees it.
* Labels are the columns of the model's ``classes_`` (encoded here), not
  whatever values ``y`` holds; a class missing from the held-out data
  makes netcal print a warning and keep that class's column uncalibrated,
  which is raised as an error here instead.
"""

from __future__ import annotations

import contextlib
import io
from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

__all__ = ["NETCAL_METHODS", "NetcalCalibratedClassifier"]

#: The calibration maps :class:`NetcalCalibratedClassifier` offers.
NETCAL_METHODS = ("histogram", "isotonic", "beta", "bbq", "enir")


def netcal_calibrator(method: str, n_bins: int = 10):
    """The netcal object of ``method`` (unfitted), with skspro's defaults."""
    from netcal.binning import BBQ, ENIR, HistogramBinning, IsotonicRegression
    from netcal.scaling import BetaCalibration

    if method == "histogram":
        return HistogramBinning(bins=n_bins)
    if method == "isotonic":
        return IsotonicRegression()
    if method == "beta":
        return BetaCalibration()
    if method == "bbq":
        return BBQ()
    if method == "enir":
        return ENIR()
    raise ValueError(f"method must be one of {NETCAL_METHODS}; got {method!r}.")


def _to_netcal(proba: np.ndarray) -> np.ndarray:
    """Probabilities as netcal reads them: float64, the positive column of a binary problem."""
    proba = np.asarray(proba, dtype=np.float64)
    return proba[:, 1] if proba.shape[1] == 2 else proba


def _from_netcal(calibrated: np.ndarray, n_classes: int) -> np.ndarray:
    calibrated = np.asarray(calibrated, dtype=np.float64)
    if n_classes == 2:
        positive = np.clip(calibrated.reshape(-1), 0.0, 1.0)
        return np.column_stack([1.0 - positive, positive])
    calibrated = np.clip(calibrated, 0.0, None)
    total = calibrated.sum(axis=1, keepdims=True)
    return np.divide(calibrated, total, out=np.full_like(calibrated, 1.0 / n_classes), where=total > 0)


@contextlib.contextmanager
def _quiet():
    """netcal prints progress bars and notes on stdout and stderr while fitting."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


class NetcalCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted classifier with a netcal calibration map learnt on held-out data.

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba``
        Never refitted: ``fit`` learns only the calibration map. Wrap it
        in :class:`~sklearn.frozen.FrozenEstimator` so that ``clone`` (in
        ``GridSearchCV``, ``cross_validate``) keeps it fitted.
    method : {"histogram", "isotonic", "beta", "bbq", "enir"}, default="isotonic"
        netcal's ``HistogramBinning``, ``IsotonicRegression``,
        ``BetaCalibration``, ``BBQ`` or ``ENIR``. Multi-class problems are
        calibrated one class against the rest and renormalised (netcal's
        own scheme).
    n_bins : int, default=10
        Bins of histogram binning (ignored by the other methods).

    Attributes
    ----------
    calibrator_ : netcal calibration object
        The fitted map.
    classes_ : ndarray of shape (n_classes,)
        The wrapped classifier's classes.
    n_networks_ : int
        Networks the wrapped classifier evaluates (for
        :func:`~skspro.metrics.calibration_report`).

    See Also
    --------
    sklearn.calibration.CalibratedClassifierCV : Temperature, sigmoid and
        isotonic calibration of scikit-learn.

    References
    ----------
    F. Küppers, J. Kronenberger, A. Shantia, A. Haselhoff. Multivariate
    confidence calibration for object detection. CVPR Workshops 2020
    (netcal).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skspro.calibration import NetcalCalibratedClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticRegression(max_iter=500).fit(X[::2], y[::2])
    >>> calibrated = NetcalCalibratedClassifier(FrozenEstimator(model), method="histogram")
    >>> calibrated.fit(X[1::2], y[1::2]).predict_proba(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["predict_proba"])],
        "method": [StrOptions(set(NETCAL_METHODS))],
        "n_bins": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, estimator, *, method: str = "isotonic", n_bins: int = 10) -> None:
        self.estimator = estimator
        self.method = method
        self.n_bins = n_bins

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: ArrayLike, y: ArrayLike) -> NetcalCalibratedClassifier:
        """Learn the calibration map on held-out data.

        Parameters
        ----------
        X : array-like
            Held-out inputs of the wrapped classifier (not its training
            data, on which a network is over-confident).
        y : array-like of shape (n_samples,)
            Their labels, from the classifier's ``classes_``.

        Returns
        -------
        self : object
        """
        try:
            check_is_fitted(self.estimator)
        except Exception as error:
            raise ValueError(
                "NetcalCalibratedClassifier needs an already fitted classifier: fit it first and wrap it "
                "as FrozenEstimator(model) (clone, as in GridSearchCV, would otherwise unfit it)."
            ) from error
        classes = np.asarray(self.estimator.classes_)
        y = np.asarray(y)
        index = np.searchsorted(classes, y)
        unknown = (index >= len(classes)) | (classes[np.minimum(index, len(classes) - 1)] != y)
        if unknown.any():
            raise ValueError(
                f"y contains labels {np.unique(y[unknown])[:10].tolist()} that the classifier does not "
                f"predict (its classes_ are {classes[:10].tolist()})."
            )
        missing = np.setdiff1d(np.arange(len(classes)), index)
        if len(missing):
            raise ValueError(
                f"The held-out data have no row of the classes {classes[missing][:10].tolist()}; "
                "netcal would "
                "leave their probabilities uncalibrated. Give held-out data with every class."
            )
        proba = np.asarray(self.estimator.predict_proba(X))
        calibrator = netcal_calibrator(self.method, self.n_bins)
        with _quiet():
            calibrator.fit(_to_netcal(proba), index)
        self.calibrator_ = calibrator
        self.classes_ = classes
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Calibrated class probabilities.

        Parameters
        ----------
        X : array-like

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        check_is_fitted(self, "calibrator_")
        proba = np.asarray(self.estimator.predict_proba(X))
        with _quiet():
            calibrated = self.calibrator_.transform(_to_netcal(proba))
        return _from_netcal(calibrated, len(self.classes_))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Most probable class after calibration.

        Parameters
        ----------
        X : array-like

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @property
    def n_networks_(self) -> int:
        """Networks the wrapped classifier evaluates per prediction."""
        from .metrics import count_networks

        return count_networks(self.estimator)
