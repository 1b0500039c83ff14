"""MAPIE 1.x split-conformal sets around fitted skspro models (MAPIE is a test dependency only)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator

mapie_classification = pytest.importorskip("mapie.classification")
mapie_metrics = pytest.importorskip("mapie.metrics.classification")


@pytest.fixture(scope="module")
def split():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.6, random_state=0, stratify=y)
    X_conf, X_test, y_conf, y_test = train_test_split(
        X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest
    )
    return X_train, y_train, X_conf, y_conf, X_test, y_test


def lac_sets(proba_conf, y_conf, proba_test, level):
    """Split-conformal LAC sets by hand: scores 1 - p(true), the finite-sample corrected quantile."""
    scores = 1.0 - proba_conf[np.arange(len(y_conf)), y_conf]
    n = len(scores)
    q = np.quantile(scores, min(1.0, np.ceil((n + 1) * level) / n), method="higher")
    return (1.0 - proba_test) <= q


def test_split_conformal_around_skspro_models(split):
    X_train, y_train, X_conf, y_conf, X_test, y_test = split
    template = default_estimator().set_params(max_epochs=8, module__hidden_units=(64,))
    models = {
        "deep ensemble": DeepEnsembleClassifier(template, n_members=2, random_state=0),
        "ESPRO": ESPROClassifier(
            template, n_members=2, n_vertices=1, vertex_epochs=2, n_samples=4, random_state=0
        ),
    }
    measured = {}
    for name, model in models.items():
        model.fit(X_train, y_train)
        conformal = mapie_classification.SplitConformalClassifier(
            model, confidence_level=[0.9, 0.95], conformity_score="lac", prefit=True
        )
        conformal.conformalize(X_conf, y_conf)
        y_pred, sets = conformal.predict_set(X_test)
        assert sets.shape == (len(X_test), 10, 2)
        np.testing.assert_array_equal(y_pred, model.predict(X_test))
        coverage = mapie_metrics.classification_coverage_score(y_test, sets)
        size = mapie_metrics.classification_mean_width_score(sets)
        assert np.all(coverage >= np.array([0.9, 0.95]) - 0.04), (name, coverage)
        assert size[0] <= size[1] < 3  # more confidence, larger sets; informative sets on digits
        # MAPIE's sets are the hand-made LAC sets from the model's probabilities
        by_hand = lac_sets(model.predict_proba(X_conf), y_conf, model.predict_proba(X_test), 0.9)
        assert (by_hand == sets[:, :, 0]).mean() > 0.995
        measured[name] = (coverage, size)
    # ESPRO's sets are no larger than the deep ensemble's by more than a tenth at 90 %
    assert measured["ESPRO"][1][0] <= 1.1 * measured["deep ensemble"][1][0]
