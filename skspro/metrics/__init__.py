"""Calibration and uncertainty metrics, scorers and a comparison report.

Calibration of class probabilities (``y_proba`` as from ``predict_proba``):

* :func:`expected_calibration_error`, :func:`maximum_calibration_error`,
  :func:`average_calibration_error` -- top-label binned metrics (equal-width
  bins computed with netcal, or equal-mass bins);
* :func:`negative_log_likelihood`, :func:`brier_score` -- proper scoring
  rules;
* :data:`ece_scorer`, :data:`mce_scorer`, :data:`nll_scorer`,
  :data:`brier_scorer` -- the same for ``GridSearchCV(scoring=...)``
  (negated: higher is better);
* :func:`calibration_report` -- all of them for several fitted models, as a
  pandas DataFrame that prints every column (:class:`CalibrationReport`);
  :func:`count_networks` counts a model's networks through wrappers.

Epistemic uncertainty from per-network probabilities (``predict_proba_networks``):
:func:`predictive_entropy`, :func:`expected_entropy`,
:func:`mutual_information`, and :func:`ood_auroc` to score out-of-distribution
detection.

Beyond AUROC: :func:`ood_score` (max probability, predictive entropy or
mutual information), :func:`ood_aupr`, :func:`fpr_at_tpr` and
:func:`ood_detection_report` (all of them for each score, as a DataFrame);
:func:`pairwise_disagreement` and :func:`disagreement` (how often the networks
predict different classes).

Selective classification (abstaining on the least confident rows):
:func:`risk_coverage_curve`, :func:`aurc`, :func:`augrc`,
:func:`coverage_at_risk`.

Comparing ensembles: :func:`deep_ensemble_equivalent` (how many deep-ensemble
members a method's NLL is worth).

Temperature scaling is scikit-learn's: fit ``CalibratedClassifierCV`` with
``method="temperature"`` around the *frozen* fitted model on held-out data
(not the training data, on which a network is over-confident).

Examples
--------
>>> from sklearn.calibration import CalibratedClassifierCV
>>> from sklearn.datasets import load_iris
>>> from sklearn.frozen import FrozenEstimator
>>> from sklearn.model_selection import train_test_split
>>> from skspro import DeepEnsembleClassifier, default_estimator
>>> from skspro.metrics import calibration_report
>>> X, y = load_iris(return_X_y=True)
>>> X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.5, random_state=0)
>>> model = DeepEnsembleClassifier(default_estimator().set_params(max_epochs=5), n_members=2,
...                                random_state=0).fit(X_train, y_train)
>>> scaled = CalibratedClassifierCV(FrozenEstimator(model), method="temperature").fit(X_val, y_val)
>>> report = calibration_report({"raw": model, "temperature-scaled": scaled}, X_val, y_val)
>>> report.shape
(2, 8)
"""

from ._calibration import (
    average_calibration_error,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
)
from ._calibration_report import CalibrationReport, calibration_report, count_networks
from ._disagreement import disagreement, pairwise_disagreement
from ._ensemble_equivalent import deep_ensemble_equivalent
from ._ood import OOD_SCORES, fpr_at_tpr, ood_aupr, ood_detection_report, ood_score
from ._scorers import brier_scorer, ece_scorer, mce_scorer, nll_scorer
from ._selective import RiskCoverage, augrc, aurc, coverage_at_risk, risk_coverage_curve
from ._uncertainty import expected_entropy, mutual_information, ood_auroc, predictive_entropy

__all__ = [
    "CalibrationReport",
    "OOD_SCORES",
    "RiskCoverage",
    "augrc",
    "aurc",
    "coverage_at_risk",
    "deep_ensemble_equivalent",
    "disagreement",
    "fpr_at_tpr",
    "ood_aupr",
    "ood_detection_report",
    "ood_score",
    "pairwise_disagreement",
    "risk_coverage_curve",
    "average_calibration_error",
    "brier_score",
    "brier_scorer",
    "calibration_report",
    "count_networks",
    "ece_scorer",
    "expected_calibration_error",
    "expected_entropy",
    "maximum_calibration_error",
    "mce_scorer",
    "mutual_information",
    "negative_log_likelihood",
    "nll_scorer",
    "ood_auroc",
    "predictive_entropy",
]
