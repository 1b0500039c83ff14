"""The calibration scorers in sklearn's model selection tools."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, cross_validate, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skspro import DeepEnsembleClassifier, default_estimator
from skspro.metrics import (
    brier_score,
    brier_scorer,
    ece_scorer,
    expected_calibration_error,
    maximum_calibration_error,
    mce_scorer,
    negative_log_likelihood,
    nll_scorer,
)

SCORERS = {
    "ece": (ece_scorer, expected_calibration_error),
    "mce": (mce_scorer, maximum_calibration_error),
    "nll": (nll_scorer, negative_log_likelihood),
    "brier": (brier_scorer, brier_score),
}


class TemperedLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression whose probabilities are sharpened (temperature < 1) or flattened."""

    def __init__(self, temperature=1.0):
        self.temperature = temperature

    def fit(self, X, y):
        self.model_ = LogisticRegression(max_iter=1000).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        logits = self.model_.predict_log_proba(X) / self.temperature
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


@pytest.fixture(scope="module")
def noisy_split():
    X, y = make_classification(
        n_samples=1200, n_features=8, n_informative=4, n_classes=3, flip_y=0.15, random_state=0
    )
    return train_test_split(X, y, test_size=0.5, random_state=0)


@pytest.mark.parametrize("name", SCORERS)
def test_scorer_is_the_negated_metric(noisy_split, name):
    X_train, X_test, y_train, y_test = noisy_split
    scorer, metric = SCORERS[name]
    model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    assert scorer(model, X_test, y_test) == pytest.approx(-metric(y_test, model.predict_proba(X_test)))


@pytest.mark.parametrize("name", SCORERS)
def test_better_calibrated_model_scores_higher(noisy_split, name):
    X_train, X_test, y_train, y_test = noisy_split
    scorer, _ = SCORERS[name]
    calibrated = TemperedLogisticRegression(1.0).fit(X_train, y_train)
    overconfident = TemperedLogisticRegression(0.2).fit(X_train, y_train)
    # same predictions, only the confidence differs
    np.testing.assert_array_equal(calibrated.predict(X_test), overconfident.predict(X_test))
    assert scorer(calibrated, X_test, y_test) > scorer(overconfident, X_test, y_test)


def test_scorers_agree_with_sklearns_own_in_cross_validate():
    X, y = load_iris(return_X_y=True)
    scoring = {
        "nll": nll_scorer,
        "brier": brier_scorer,
        "sk_nll": "neg_log_loss",
        "sk_brier": "neg_brier_score",
    }
    scores = cross_validate(LogisticRegression(max_iter=1000), X, y, cv=3, scoring=scoring)
    np.testing.assert_allclose(scores["test_nll"], scores["test_sk_nll"], rtol=1e-12)
    # three classes: sklearn's multiclass Brier score is the same sum over classes
    np.testing.assert_allclose(scores["test_brier"], scores["test_sk_brier"], rtol=1e-12)


def test_binary_problems_get_the_positive_column_and_still_work():
    # for two classes sklearn's scorers pass predict_proba's positive column only
    X, y = make_classification(n_samples=300, flip_y=0.1, random_state=1)
    ours = {"ece": ece_scorer, "nll": nll_scorer, "brier": brier_scorer}
    scoring = {**ours, "sk_nll": "neg_log_loss", "sk_brier": "neg_brier_score"}
    scores = cross_validate(LogisticRegression(), X, y, cv=3, scoring=scoring)
    np.testing.assert_allclose(scores["test_nll"], scores["test_sk_nll"], rtol=1e-12)
    # two classes: sklearn halves the Brier score (positive column only)
    np.testing.assert_allclose(scores["test_brier"], 2 * scores["test_sk_brier"], rtol=1e-12)
    assert np.all((scores["test_ece"] < 0) & (scores["test_ece"] > -1))
    # string labels: "spam" > "ham" is the positive class, as 1 > 0 above
    named = cross_validate(LogisticRegression(), X, np.where(y == 1, "spam", "ham"), cv=3, scoring=ours)
    for name in ours:
        np.testing.assert_allclose(named[f"test_{name}"], scores[f"test_{name}"], rtol=1e-12)


def test_grid_search_with_logistic_regression(noisy_split):
    X_train, _, y_train, _ = noisy_split
    scoring = {"ece": ece_scorer, "mce": mce_scorer, "nll": nll_scorer, "sk_nll": "neg_log_loss"}
    search = GridSearchCV(
        LogisticRegression(max_iter=1000), {"C": [1e-4, 1e-2, 1.0]}, scoring=scoring, refit="nll", cv=3
    ).fit(X_train, y_train)
    results = search.cv_results_
    np.testing.assert_allclose(results["mean_test_nll"], results["mean_test_sk_nll"], rtol=1e-12)
    assert search.best_index_ == int(np.argmax(results["mean_test_sk_nll"]))
    assert np.all(results["mean_test_ece"] <= 0) and np.all(
        results["mean_test_mce"] <= results["mean_test_ece"]
    )
    # C=1e-4 squashes every probability towards the class frequencies: the worst NLL
    assert search.best_params_ != {"C": 1e-4}


def test_grid_search_with_deep_ensemble():
    X, y = load_iris(return_X_y=True)
    template = default_estimator().set_params(max_epochs=10, module__hidden_units=(16,))
    pipeline = make_pipeline(StandardScaler(), DeepEnsembleClassifier(template, n_members=2, random_state=0))
    search = GridSearchCV(
        pipeline,
        {"deepensembleclassifier__estimator__lr": [1e-3, 3e-2]},
        scoring={"ece": ece_scorer, "nll": nll_scorer, "brier": brier_scorer},
        refit="nll",
        cv=3,
    ).fit(X, y)
    results = search.cv_results_
    for name in ("ece", "nll", "brier"):
        assert np.all(np.isfinite(results[f"mean_test_{name}"]))
        assert np.all(results[f"mean_test_{name}"] <= 0)
    # ten epochs at lr 1e-3 barely move the network: the larger learning rate fits better
    assert search.best_params_ == {"deepensembleclassifier__estimator__lr": 3e-2}
    assert nll_scorer(search.best_estimator_, X, y) == pytest.approx(
        -negative_log_likelihood(y, search.predict_proba(X))
    )


def test_fold_missing_a_class_needs_the_labels():
    X, y = load_iris(return_X_y=True)
    test = np.r_[0:10, 50:60]  # a test fold without class 2; the training part has all three
    split = [(np.setdiff1d(np.arange(len(y)), test), test)]
    model = LogisticRegression(max_iter=1000)
    with pytest.raises(ValueError, match="2 distinct labels .* 3 columns.*labels="):
        cross_validate(model, X, y, cv=split, scoring=ece_scorer, error_score="raise")
    with_labels = make_scorer(
        expected_calibration_error, greater_is_better=False, response_method="predict_proba", labels=[0, 1, 2]
    )
    scores = cross_validate(model, X, y, cv=split, scoring=with_labels)["test_score"]
    fitted = model.fit(X[split[0][0]], y[split[0][0]])
    expected = expected_calibration_error(y[test], fitted.predict_proba(X[test]), labels=[0, 1, 2])
    assert scores[0] == pytest.approx(-expected)
