"""One table comparing the accuracy and calibration of several fitted classifiers."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted

from ._calibration import (
    average_calibration_error,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
)

__all__ = ["CalibrationReport", "calibration_report", "count_networks"]

REPORT_COLUMNS = ("accuracy", "nll", "ece", "mce", "ace", "brier", "predict_time_s", "n_networks")


def _final_step(estimator):
    """The last step of a Pipeline, the estimator itself otherwise."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def count_networks(estimator) -> int:
    """Networks (or models) ``estimator.predict_proba`` evaluates, looking through wrappers.

    An estimator with ``n_networks_`` (skspro's) counts that many; a
    ``Pipeline`` counts its final step, a ``FrozenEstimator`` and a fitted
    search (``GridSearchCV``, ``RandomizedSearchCV``) the estimator they
    predict with, a ``CalibratedClassifierCV`` the sum over its calibrated
    classifiers (one per fold with ``ensemble=True``); anything else counts 1.

    Parameters
    ----------
    estimator : fitted estimator

    Returns
    -------
    int
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection._search import BaseSearchCV
    from sklearn.pipeline import Pipeline

    if hasattr(estimator, "n_networks_"):
        return int(estimator.n_networks_)
    if isinstance(estimator, Pipeline):
        return count_networks(estimator.steps[-1][1])
    if isinstance(estimator, FrozenEstimator):
        return count_networks(estimator.estimator)
    if isinstance(estimator, BaseSearchCV) and hasattr(estimator, "best_estimator_"):
        return count_networks(estimator.best_estimator_)
    if isinstance(estimator, CalibratedClassifierCV) and hasattr(estimator, "calibrated_classifiers_"):
        return sum(count_networks(c.estimator) for c in estimator.calibrated_classifiers_)
    return 1


class CalibrationReport(pd.DataFrame):
    """The table of :func:`calibration_report`: a DataFrame that prints every column.

    ``print(report)`` and ``repr(report)`` show all columns and rows
    whatever pandas' display options (which hide the middle columns of a
    wide table); anything derived from it (``report[["ece"]]``,
    ``report.round(3)``) is a plain DataFrame.
    """

    @property
    def _constructor(self):
        return pd.DataFrame

    def __repr__(self) -> str:
        return self.to_string()


def _named(estimators) -> dict[str, object]:
    if isinstance(estimators, Mapping):
        named = {str(name): est for name, est in estimators.items()}
    elif isinstance(estimators, Iterable) and not hasattr(estimators, "fit"):
        named = {}
        for est in estimators:
            base = type(_final_step(est)).__name__
            name, count = base, 1
            while name in named:
                count += 1
                name = f"{base} ({count})"
            named[name] = est
    else:
        raise ValueError(
            "estimators must be a dict {name: fitted estimator} or a list of fitted estimators; "
            f"got {type(estimators).__name__}. Wrap a single model as [model]."
        )
    if not named:
        raise ValueError("estimators is empty; pass at least one fitted classifier.")
    return named


def calibration_report(
    estimators: Mapping[str, object] | Iterable[object],
    X: ArrayLike,
    y: ArrayLike,
    *,
    n_bins: int = 15,
) -> pd.DataFrame:
    """Accuracy and calibration of fitted classifiers on one data set, as a table.

    Each estimator's ``predict_proba(X)`` is computed once (and timed); the
    predicted class is its argmax, so accuracy and the binned metrics see the
    same predictions. Works with any fitted sklearn classifier or
    ``Pipeline`` that has ``predict_proba``.

    Parameters
    ----------
    estimators : dict of {str: estimator} or list of estimators
        Fitted classifiers. A list is named by class (the final step's, for a
        ``Pipeline``), with `` (2)``, `` (3)``... for repeats.
    X : array-like of shape (n_samples, ...)
        Evaluation inputs (a held-out set).
    y : array-like of shape (n_samples,)
        True labels; a class the model knows may be missing from ``y``.
    n_bins : int, default=15
        Equal-width bins of the ECE, MCE and ACE.

    Returns
    -------
    CalibrationReport
        A pandas DataFrame, one row per estimator (index ``model``) with columns ``accuracy``,
        ``nll``, ``ece``, ``mce``, ``ace``, ``brier`` (see
        :mod:`skspro.metrics`), ``predict_time_s`` (seconds of
        ``predict_proba``) and ``n_networks`` (networks evaluated per
        prediction, counted through ``Pipeline``, ``FrozenEstimator``,
        ``CalibratedClassifierCV`` and searches by :func:`count_networks`;
        1 for models without networks). A :class:`CalibrationReport`: a
        DataFrame whose text form shows every column.

    See Also
    --------
    expected_calibration_error, negative_log_likelihood, brier_score

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from skspro.metrics import calibration_report
    >>> X, y = load_iris(return_X_y=True)
    >>> models = {"logistic": LogisticRegression(max_iter=1000).fit(X, y),
    ...           "naive Bayes": GaussianNB().fit(X, y)}
    >>> report = calibration_report(models, X, y)
    >>> list(report.index)
    ['logistic', 'naive Bayes']
    >>> list(report.columns)
    ['accuracy', 'nll', 'ece', 'mce', 'ace', 'brier', 'predict_time_s', 'n_networks']
    >>> int(report.loc["logistic", "n_networks"])
    1
    """
    rows = {}
    for name, estimator in _named(estimators).items():
        if not hasattr(estimator, "predict_proba"):
            raise ValueError(
                f"Estimator {name!r} ({type(estimator).__name__}) has no predict_proba; calibration needs "
                "probabilities (e.g. SVC(probability=True), or wrap it in CalibratedClassifierCV)."
            )
        check_is_fitted(estimator)
        start = time.perf_counter()
        proba = estimator.predict_proba(X)
        predict_time = time.perf_counter() - start
        classes = estimator.classes_
        nll = negative_log_likelihood(y, proba, labels=classes)  # validates y against proba first
        predicted = classes[np.argmax(proba, axis=1)]
        rows[name] = {
            "accuracy": float(np.mean(predicted == np.asarray(y).reshape(-1))),
            "nll": nll,
            "ece": expected_calibration_error(y, proba, n_bins=n_bins, labels=classes),
            "mce": maximum_calibration_error(y, proba, n_bins=n_bins, labels=classes),
            "ace": average_calibration_error(y, proba, n_bins=n_bins, labels=classes),
            "brier": brier_score(y, proba, labels=classes),
            "predict_time_s": predict_time,
            "n_networks": count_networks(estimator),
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(REPORT_COLUMNS))
    table.index.name = "model"
    return CalibrationReport(table)
