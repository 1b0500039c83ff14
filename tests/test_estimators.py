"""ESPROClassifier and DeepEnsembleClassifier: the estimator contract in use."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, load_wine
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator
from skspro.modules import SmallCNN
from skspro.simplex import SampledNetworks


def small_template(**params):
    settings = {"max_epochs": 8, "module__hidden_units": (32,), "lr": 3e-3, **params}
    return default_estimator().set_params(**settings)


def small_espro(**params):
    settings = dict(n_members=2, n_vertices=2, vertex_epochs=2, n_samples=3, random_state=0)
    settings.update(params)
    return ESPROClassifier(small_template(), **settings)


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def fitted(wine):
    X_train, _, y_train, _ = wine
    return small_espro().fit(X_train, y_train)


def test_zero_vertices_is_exactly_the_deep_ensemble(wine):
    X_train, X_test, y_train, _ = wine
    espro = ESPROClassifier(small_template(), n_members=3, n_vertices=0, random_state=7).fit(X_train, y_train)
    ensemble = DeepEnsembleClassifier(small_template(), n_members=3, random_state=7).fit(X_train, y_train)
    np.testing.assert_array_equal(espro.predict_proba(X_test), ensemble.predict_proba(X_test))
    assert espro.n_networks_ == ensemble.n_networks_ == 3
    # ... and the deep ensemble is the mean of its members' own predictions.
    members = np.mean([net.predict_proba(X_test.astype(np.float32)) for net in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(X_test), members, rtol=1e-5, atol=1e-6)


def test_members_are_shared_with_the_deep_ensemble_and_vertex_zero_is_the_member(wine, fitted):
    X_train, _, y_train, _ = wine
    ensemble = DeepEnsembleClassifier(small_template(), n_members=2, random_state=0).fit(X_train, y_train)
    for espro_net, ensemble_net, simplex in zip(fitted.estimators_, ensemble.estimators_, fitted.simplexes_):
        for name, p in espro_net.module_.named_parameters():
            assert torch.equal(p, dict(ensemble_net.module_.named_parameters())[name])
            assert torch.equal(simplex.params[name][0], p)


def test_earlier_vertices_are_unchanged_by_later_vertices(wine, fitted):
    X_train, _, y_train, _ = wine
    shorter = small_espro(n_vertices=1).fit(X_train, y_train)
    for long_simplex, short_simplex in zip(fitted.simplexes_, shorter.simplexes_):
        assert long_simplex.n_vertices == 3 and short_simplex.n_vertices == 2
        for name, stacked in short_simplex.params.items():
            assert torch.equal(long_simplex.params[name][:2], stacked)
        # The new vertex really moved away from the old ones.
        assert long_simplex.log_volume() > -np.inf


def test_fitted_attributes(fitted):
    assert fitted.n_networks_ == 6
    assert fitted.log_volumes_.shape == (2, 2)
    assert np.isfinite(fitted.log_volumes_).all()
    assert fitted.relative_edge_lengths_.shape == (2, 2)
    assert (fitted.relative_edge_lengths_ > 0).all()
    assert len(fitted.vertex_histories_) == 2 and len(fitted.vertex_histories_[0]) == 2
    history = fitted.vertex_histories_[0][1]
    assert len(history) == 2  # vertex_epochs
    assert {"train_loss", "ce_loss", "log_volume", "dur"} <= set(history[-1])
    weights = fitted.sample_weights_[0]
    assert weights.shape == (3, 3)
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-6)
    assert fitted.vertex_fit_times_.shape == (2, 2)


def test_predict_proba_is_deterministic_and_the_mean_of_the_networks(wine, fitted):
    _, X_test, _, _ = wine
    proba = fitted.predict_proba(X_test)
    np.testing.assert_array_equal(proba, fitted.predict_proba(X_test))
    networks = fitted.predict_proba_networks(X_test)
    assert networks.shape == (6, len(X_test), 3)
    np.testing.assert_allclose(networks.mean(0), proba, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    # Row subsets (vectorised path) give the rows of the full batch (loop path).
    np.testing.assert_allclose(fitted.predict_proba(X_test[:5]), proba[:5], rtol=1e-5, atol=1e-6)


def test_same_random_state_same_predictions_and_user_rng_untouched(wine):
    X_train, X_test, y_train, _ = wine
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    a = small_espro(random_state=3).fit(X_train, y_train).predict_proba(X_test)
    assert torch.equal(before, torch.random.get_rng_state())
    b = small_espro(random_state=3).fit(X_train, y_train).predict_proba(X_test)
    c = small_espro(random_state=4).fit(X_train, y_train).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_string_and_non_contiguous_labels(wine):
    X_train, X_test, y_train, y_test = wine
    names = np.array(["cab", "merlot", "syrah"])
    model = small_espro(n_vertices=1).fit(X_train, names[y_train])
    assert list(model.classes_) == ["cab", "merlot", "syrah"]
    assert set(model.predict(X_test)) <= set(names)
    sparse_labels = np.array([-5, 10, 1000])
    model = small_espro(n_vertices=1).fit(X_train, sparse_labels[y_train])
    assert list(model.classes_) == [-5, 10, 1000]
    accuracy = np.mean(model.predict(X_test) == sparse_labels[y_test])
    assert accuracy > 0.8


def test_pandas_input_keeps_feature_names(wine):
    X_train, X_test, y_train, _ = wine
    columns = [f"f{i}" for i in range(X_train.shape[1])]
    model = small_espro(n_vertices=1).fit(pd.DataFrame(X_train, columns=columns), pd.Series(y_train))
    assert list(model.feature_names_in_) == columns
    assert model.n_features_in_ == X_train.shape[1]
    proba = model.predict_proba(pd.DataFrame(X_test, columns=columns))
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_allclose(proba, model.predict_proba(X_test))


def test_user_arrays_are_not_modified(wine):
    X_train, _, y_train, _ = wine
    X = X_train.copy()
    y = y_train.copy()
    small_espro(n_vertices=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(X, X_train)
    np.testing.assert_array_equal(y, y_train)


def test_pickle_and_clone_round_trip(wine, fitted):
    _, X_test, _, _ = wine
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X_test), fitted.predict_proba(X_test))
    fresh = clone(fitted)
    assert fresh.get_params()["n_vertices"] == 2
    assert not hasattr(fresh, "estimators_")


def test_pipeline_and_grid_search_over_vertices_and_inner_learning_rate():
    X, y = load_wine(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), small_espro(vertex_epochs=1, n_members=1))
    grid = GridSearchCV(
        pipe,
        {"esproclassifier__n_vertices": [0, 1], "esproclassifier__estimator__lr": [1e-3, 1e-2]},
        cv=2,
        scoring="neg_log_loss",
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    best = grid.best_estimator_[-1]
    assert best.estimators_[0].lr == grid.best_params_["esproclassifier__estimator__lr"]


def _digit_images():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def cnn_template():
    """A small BatchNorm CNN for the 8x8 digit images."""
    return NeuralNetClassifier(
        SmallCNN,
        module__n_classes=10,
        module__channels=8,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=3e-3,
        batch_size=64,
        max_epochs=6,
        train_split=None,
        iterator_train__shuffle=True,
    )


def test_cnn_with_batchnorm_on_images():
    X_train, X_test, y_train, y_test = _digit_images()
    cnn = cnn_template()
    model = ESPROClassifier(cnn, n_members=1, n_vertices=1, vertex_epochs=2, n_samples=4, random_state=0)
    model.fit(X_train, y_train)
    assert model.n_features_in_ == 1
    accuracy = np.mean(model.predict(X_test) == y_test)
    assert accuracy > 0.85
    # Every sampled network has its own BatchNorm statistics ...
    group = model.networks_.groups[0]
    assert group.norm_buffers
    means = group.norm_buffers["features.1.running_mean"]
    assert means.shape[0] == 4 and not torch.allclose(means[0], means[1])
    with pytest.raises(ValueError, match="row shape"):
        model.predict(X_test.reshape(len(X_test), 1, 4, 16))


def test_single_class_raises(wine):
    X_train, _, _, _ = wine
    with pytest.raises(ValueError, match="at least 2 classes"):
        small_espro().fit(X_train, np.zeros(len(X_train)))


def test_full_sampling_trains_too(wine):
    X_train, X_test, y_train, y_test = wine
    model = small_espro(train_sampling="full", n_train_samples=3).fit(X_train, y_train)
    assert np.isfinite(model.log_volumes_).all()
    assert np.mean(model.predict(X_test) == y_test) > 0.8


def test_recomputed_batchnorm_statistics_beat_the_members_on_sampled_networks():
    """The reference code shares the member's statistics across the simplex."""
    from dataclasses import replace

    from sklearn.metrics import log_loss

    X_train, _, y_train, _ = _digit_images()
    cnn = cnn_template()
    model = ESPROClassifier(
        cnn, n_members=1, n_vertices=2, vertex_epochs=3, n_samples=6, reg=1e-2, random_state=0
    ).fit(X_train, y_train)
    own = model.predict_proba_networks(X_train)
    networks = model.networks_
    shared_networks = SampledNetworks(
        networks.module,
        [replace(g, norm_buffers={}) for g in networks.groups],
        nonlinearity=networks.nonlinearity,
    )
    shared = shared_networks.predict_proba_networks(torch.as_tensor(X_train))
    nll_own = np.mean([log_loss(y_train, p, labels=range(10)) for p in own])
    nll_shared = np.mean([log_loss(y_train, p, labels=range(10)) for p in shared])
    assert nll_own < nll_shared


@pytest.mark.parametrize("batch_norm", [False, True])
def test_all_members_in_one_wide_forward_equal_member_by_member(batch_norm):
    """predict_proba stacks all members' networks (one forward); member by member is the reference."""
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16.0).astype(np.float32)
    model = ESPROClassifier(
        small_template(max_epochs=3, module__batch_norm=batch_norm),
        n_members=3,
        n_vertices=1,
        vertex_epochs=1,
        n_samples=4,
        random_state=0,
    ).fit(X, y[:300])
    deep = DeepEnsembleClassifier(small_template(max_epochs=3, module__batch_norm=batch_norm), n_members=3)
    deep.set_params(random_state=0).fit(X, y[:300])
    for estimator in (model, deep):
        networks = estimator.networks_
        assert len(networks._parts) == 1  # the stacked path is the one taken
        x = torch.as_tensor(X)
        per_member = torch.cat(
            [
                SampledNetworks(networks.module, [g], nonlinearity=networks.nonlinearity).forward(x)
                for g in networks.groups
            ]
        )
        np.testing.assert_allclose(
            estimator.predict_proba_networks(X), per_member.numpy(), rtol=1e-5, atol=1e-7
        )
        np.testing.assert_allclose(
            estimator.predict_proba(X), per_member.mean(0).numpy(), rtol=1e-5, atol=1e-7
        )
        restored = pickle.loads(pickle.dumps(estimator))
        np.testing.assert_array_equal(restored.predict_proba(X), estimator.predict_proba(X))
