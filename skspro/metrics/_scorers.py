"""scikit-learn scorers for the calibration metrics.

Each scorer is made with :func:`sklearn.metrics.make_scorer` from the metric
of the same name, with ``response_method="predict_proba"`` and
``greater_is_better=False``: it returns the *negated* metric, so that higher
is better everywhere in ``GridSearchCV`` / ``cross_validate``, as for
sklearn's ``"neg_log_loss"``.

========================  ======================================  ==============================
scorer                    metric                                  sklearn counterpart
========================  ======================================  ==============================
``ece_scorer``            :func:`expected_calibration_error`      --
``mce_scorer``            :func:`maximum_calibration_error`       --
``nll_scorer``            :func:`negative_log_likelihood`         ``"neg_log_loss"`` (equal)
``brier_scorer``          :func:`brier_score`                     ``"neg_brier_score"`` (equal
                                                                  for 3+ classes, half for 2)
========================  ======================================  ==============================

As with ``"neg_log_loss"``, every class must occur in each test fold unless
the labels are given: the default ``StratifiedKFold`` of classifiers ensures
it when each class has at least ``n_splits`` samples; otherwise build the
scorer with the labels, e.g.
``make_scorer(expected_calibration_error, greater_is_better=False,
response_method="predict_proba", labels=classes)``.

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.model_selection import cross_validate
>>> from skspro.metrics import ece_scorer, nll_scorer
>>> X, y = load_iris(return_X_y=True)
>>> scores = cross_validate(LogisticRegression(max_iter=1000), X, y, cv=3,
...                         scoring={"ece": ece_scorer, "nll": nll_scorer, "sk_nll": "neg_log_loss"})
>>> bool((scores["test_ece"] <= 0).all())
True
>>> bool(abs(scores["test_nll"] - scores["test_sk_nll"]).max() < 1e-12)
True
"""

from __future__ import annotations

from sklearn.metrics import make_scorer

from ._calibration import (
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
)

__all__ = ["brier_scorer", "ece_scorer", "mce_scorer", "nll_scorer"]


def _lower_is_better(metric):
    return make_scorer(metric, greater_is_better=False, response_method="predict_proba")


#: Negated :func:`expected_calibration_error` (15 equal-width bins).
ece_scorer = _lower_is_better(expected_calibration_error)
#: Negated :func:`maximum_calibration_error` (15 equal-width bins).
mce_scorer = _lower_is_better(maximum_calibration_error)
#: Negated :func:`negative_log_likelihood`; equals sklearn's ``"neg_log_loss"``.
nll_scorer = _lower_is_better(negative_log_likelihood)
#: Negated :func:`brier_score` (sum over classes; sklearn's ``"neg_brier_score"`` halves it for 2 classes).
brier_scorer = _lower_is_better(brier_score)
