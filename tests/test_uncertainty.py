"""Entropy decomposition, mutual information and OOD AUROC."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris

from skspro import DeepEnsembleClassifier, default_estimator
from skspro.metrics import expected_entropy, mutual_information, ood_auroc, predictive_entropy

FUNCTIONS = [predictive_entropy, expected_entropy, mutual_information]


def random_networks(seed, n_networks=4, n_samples=30, n_classes=5, concentration=0.5):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(n_classes, concentration), size=(n_networks, n_samples))


def reference_entropy(p):
    return -sum(q * np.log(q) for q in p if q > 0)


def test_against_loops():
    proba = random_networks(0)
    proba[0, 0] = [1, 0, 0, 0, 0]  # 0 log 0 = 0
    n_networks, n_samples, _ = proba.shape
    for i in range(n_samples):
        total = reference_entropy(proba[:, i].mean(axis=0))
        expected = np.mean([reference_entropy(proba[k, i]) for k in range(n_networks)])
        assert predictive_entropy(proba)[i] == pytest.approx(total, abs=1e-12)
        assert expected_entropy(proba)[i] == pytest.approx(expected, abs=1e-12)
        assert mutual_information(proba)[i] == pytest.approx(total - expected, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_networks=st.integers(1, 6),
    n_classes=st.integers(2, 8),
    concentration=st.sampled_from([0.01, 0.3, 1.0, 10.0]),
)
def test_decomposition_and_bounds(seed, n_networks, n_classes, concentration):
    proba = random_networks(seed, n_networks, 20, n_classes, concentration)
    total, aleatoric, epistemic = (f(proba) for f in FUNCTIONS)
    for values in (total, aleatoric, epistemic):
        assert values.shape == (20,)
    assert np.all(epistemic >= 0)
    np.testing.assert_allclose(total, aleatoric + epistemic, atol=1e-12)
    assert np.all(total <= np.log(n_classes) + 1e-12)
    assert np.all(epistemic <= np.log(min(n_networks, n_classes)) + 1e-12)


def test_identical_networks_have_zero_mutual_information():
    one = random_networks(1, n_networks=1)
    identical = np.repeat(one, 5, axis=0)
    np.testing.assert_array_equal(mutual_information(identical), 0.0)
    np.testing.assert_allclose(predictive_entropy(identical), expected_entropy(identical), atol=1e-15)
    # one network, as (n, C) or (1, n, C): no disagreement at all
    np.testing.assert_array_equal(mutual_information(one[0]), 0.0)


def test_disagreeing_confident_networks_are_epistemic():
    proba = np.array([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]])
    assert expected_entropy(proba) == pytest.approx([0.0])
    assert mutual_information(proba) == pytest.approx([np.log(3)])


def test_with_an_ensemble():
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = DeepEnsembleClassifier(
        default_estimator().set_params(max_epochs=10), n_members=3, random_state=0
    ).fit(X, y)
    networks = model.predict_proba_networks(X)
    assert networks.shape == (3, len(X), 3)
    np.testing.assert_allclose(predictive_entropy(networks), predictive_entropy(model.predict_proba(X)))
    assert np.all(mutual_information(networks) >= 0) and mutual_information(networks).max() > 0


def test_inputs_are_not_modified():
    proba = random_networks(2).astype(np.float32)
    proba /= proba.sum(axis=-1, keepdims=True)
    copy = proba.copy()
    proba.flags.writeable = False
    for function in FUNCTIONS:
        function(proba)
    np.testing.assert_array_equal(proba, copy)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_bad_probabilities_raise(function):
    with pytest.raises(ValueError, match=r"shaped \(n_networks, n_samples, n_classes\).*got shape \(4,\)"):
        function(np.full(4, 0.25))
    with pytest.raises(ValueError, match="must sum to 1"):
        function(np.full((2, 3, 4), 0.3))
    with pytest.raises(ValueError, match="negative values"):
        function(np.array([[[1.5, -0.5]]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        function(np.array([[[np.nan, 1.0]]]))


def test_ood_auroc():
    rng = np.random.default_rng(0)
    inside = rng.normal(size=2000)
    assert ood_auroc(inside, inside + 100.0) == 1.0
    assert ood_auroc(inside + 100.0, inside) == 0.0
    assert ood_auroc(inside, inside) == 0.5
    assert ood_auroc(inside, rng.normal(size=3000)) == pytest.approx(0.5, abs=0.03)
    # hand-computed: of the 3 x 2 (in, out) pairs, 5 are ordered, 1 is tied (counts half)
    assert ood_auroc([0.1, 0.5, 0.9], [0.9, 1.0]) == pytest.approx(5.5 / 6)


def test_ood_auroc_bad_inputs():
    with pytest.raises(ValueError, match="scores_in is empty"):
        ood_auroc([], [1.0])
    with pytest.raises(ValueError, match=r"scores_out must be 1-D .*got shape \(2, 1\)"):
        ood_auroc([1.0], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="scores_out contains NaN"):
        ood_auroc([1.0], [np.nan])
