"""SPROConnector: mode-connecting complexes, their volume and their paths."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skspro import DeepEnsembleClassifier, ESPROClassifier, SPROConnector, default_estimator


def mode_template():
    return default_estimator().set_params(max_epochs=30, module__hidden_units=(64,), lr=5e-3)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def ensemble(digits):
    X_train, _, y_train, _ = digits
    return DeepEnsembleClassifier(mode_template(), n_members=2, random_state=0).fit(X_train, y_train)


def connect(ensemble, X, y, **params):
    settings = dict(n_connectors=2, connector_epochs=20, n_samples=6, random_state=0)
    settings.update(params)
    return SPROConnector(FrozenEstimator(ensemble), **settings).fit(X, y)


@pytest.fixture(scope="module")
def complex_(digits, ensemble):
    X_train, _, y_train, _ = digits
    return connect(ensemble, X_train, y_train)


def _state(nets):
    return [{k: v.clone() for k, v in net.module_.state_dict().items()} for net in nets]


def test_frozen_modes_are_bit_identical_after_fit(digits):
    X_train, _, y_train, _ = digits
    ensemble = DeepEnsembleClassifier(mode_template().set_params(max_epochs=5), n_members=2, random_state=1)
    ensemble.fit(X_train, y_train)
    before = _state(ensemble.estimators_)
    connected = connect(ensemble, X_train, y_train, n_connectors=1, connector_epochs=2)
    for net, state in zip(ensemble.estimators_, before):
        for name, value in net.module_.state_dict().items():
            assert torch.equal(value, state[name])
    assert connected.estimators_[0] is ensemble.estimators_[0]
    for i, net in enumerate(ensemble.estimators_):
        for name, p in net.module_.named_parameters():
            assert torch.equal(connected.vertices_.params[name][i], p)


def test_structure_and_fitted_attributes(complex_):
    assert complex_.simplices_ == [(0, 2, 3), (1, 2, 3)]
    assert complex_.vertices_.n_vertices == 4
    assert complex_.n_networks_ == 12
    assert complex_.log_volumes_.shape == complex_.relative_heights_.shape == (2,)
    assert np.isfinite(complex_.log_volumes_).all() and (complex_.volumes_ > 0).all()
    assert len(complex_.connector_histories_) == 2
    weights = complex_.sample_weights_
    assert weights.shape == (12, 4)
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-6)
    # Each prediction network lies in one simplex: mode i plus the connectors.
    assert (weights[:6, 1] == 0).all() and (weights[6:, 0] == 0).all()


def test_the_straight_line_has_a_barrier_the_complex_path_does_not(digits, complex_):
    X_train, _, y_train, _ = digits
    paths = complex_.path_metrics(X_train, y_train, n_points=9)
    line = paths[paths.path == "line"].loss.to_numpy()
    through = paths[paths.path == "complex"].loss.to_numpy()
    mode_loss = complex_.mode_train_loss_.max()
    # The barrier exists: the midpoint of the straight line is much worse.
    assert line.max() > 4 * mode_loss
    # Through the complex the loss stays near the modes'.
    assert through.max() < 0.4 * line.max()
    assert through.max() < 3 * mode_loss
    # ... and so does every simplex's sampled network, on average.
    assert (complex_.simplex_train_loss_ < 2.5 * mode_loss).all()
    assert (complex_.simplex_train_accuracy_ > 0.98).all()


def test_later_connectors_leave_earlier_ones_unchanged(digits, ensemble, complex_):
    X_train, _, y_train, _ = digits
    shorter = connect(ensemble, X_train, y_train, n_connectors=1)
    for name, stacked in shorter.vertices_.params.items():
        assert torch.equal(complex_.vertices_.params[name][:3], stacked)


def test_volume_grows_with_the_regulariser(digits, ensemble, complex_):
    X_train, _, y_train, _ = digits
    for history in complex_.connector_histories_:
        assert history[-1, "log_volume"] > history[0, "log_volume"]
    without = connect(ensemble, X_train, y_train, n_connectors=1, reg=0.0, connector_epochs=10)
    with_reg = connect(ensemble, X_train, y_train, n_connectors=1, reg=1e-2, connector_epochs=10)
    assert with_reg.log_volumes_[0] > without.log_volumes_[0]


def test_grow_until_collapse_stops_at_the_first_low_connector(digits, ensemble):
    X_train, _, y_train, _ = digits
    grown = connect(ensemble, X_train, y_train, n_connectors=1, connector_epochs=3)
    grown.grow_until_collapse(X_train, y_train, max_connectors=3, collapse_ratio=0.05)
    assert grown.n_connectors == 1  # the constructor parameter is left alone
    assert 2 <= grown.n_connectors_ <= 3
    assert grown.n_connectors_ == len(grown.relative_heights_) == len(grown.start_relative_heights_)
    if grown.collapse_at_ is None:
        assert grown.n_connectors_ == 3 and (grown.relative_heights_[1:] >= 0.05).all()
    else:  # growth stopped right at the collapse
        assert grown.collapse_at_ == grown.n_connectors_
        assert grown.relative_heights_[grown.collapse_at_ - 1] < 0.05
    # A ratio that every connector is below stops after exactly one new one.
    before = grown.n_connectors_
    grown.grow_until_collapse(X_train, y_train, max_connectors=10, collapse_ratio=1e6)
    assert grown.n_connectors_ == grown.collapse_at_ == before + 1
    assert grown.simplices_[0] == (0, *range(2, 2 + before + 1))


def test_trained_connectors_rise_above_their_start(complex_):
    # Each connector starts at the centroid of all current vertices (plus 1 %
    # noise); training with the volume term lifts it well above that.
    assert (complex_.start_relative_heights_ > 0).all()
    assert (complex_.relative_heights_ > 1.5 * complex_.start_relative_heights_).all()


def test_collapse_without_regulariser_warns(digits, ensemble):
    X_train, _, y_train, _ = digits
    grown = connect(ensemble, X_train, y_train, n_connectors=1, connector_epochs=1, reg=0.0)
    with pytest.warns(UserWarning, match="reg=0"):
        grown.grow_until_collapse(X_train, y_train, max_connectors=2)


def test_zero_connectors_predict_like_the_modes(digits, ensemble):
    X_train, X_test, y_train, _ = digits
    connected = connect(ensemble, X_train, y_train, n_connectors=0)
    np.testing.assert_allclose(connected.predict_proba(X_test), ensemble.predict_proba(X_test), rtol=1e-6)
    with pytest.raises(ValueError, match="no connector"):
        connected.path_metrics(X_train, y_train)


def test_connector_predictions_against_the_ensemble(digits, ensemble, complex_):
    _, X_test, _, y_test = digits
    networks = complex_.predict_proba_networks(X_test)
    assert networks.shape == (12, len(X_test), 10)
    np.testing.assert_allclose(networks.mean(0), complex_.predict_proba(X_test), atol=1e-12)
    accuracy = np.mean(complex_.predict(X_test) == y_test)
    assert accuracy > np.mean(ensemble.predict(X_test) == y_test) - 0.02


def test_trained_modes_are_the_deep_ensembles_members(digits):
    X_train, _, y_train, _ = digits
    template = mode_template().set_params(max_epochs=3)
    connector = SPROConnector(template, n_modes=2, n_connectors=1, connector_epochs=1, random_state=5)
    connector.fit(X_train, y_train)
    ensemble = DeepEnsembleClassifier(template, n_members=2, random_state=5).fit(X_train, y_train)
    for mode, member in zip(connector.estimators_, ensemble.estimators_):
        for (name, a), (_, b) in zip(mode.module_.named_parameters(), member.module_.named_parameters()):
            assert torch.equal(a, b), name


def test_modes_from_a_list_of_frozen_nets_and_from_espro(digits, ensemble):
    X_train, X_test, y_train, _ = digits
    nets = [FrozenEstimator(net) for net in ensemble.estimators_]
    from_list = SPROConnector(nets, n_connectors=1, connector_epochs=2, random_state=0).fit(X_train, y_train)
    assert from_list.vertices_.n_vertices == 3
    espro = ESPROClassifier(
        mode_template().set_params(max_epochs=3), n_members=2, n_vertices=1, vertex_epochs=1, random_state=0
    ).fit(X_train, y_train)
    from_espro = SPROConnector(FrozenEstimator(espro), n_connectors=1, connector_epochs=1).fit(
        X_train, y_train
    )
    assert from_espro.predict_proba(X_test).shape == (len(X_test), 10)


def test_bad_modes_raise_clear_errors(digits, ensemble):
    X_train, _, y_train, _ = digits
    with pytest.raises(ValueError, match="FrozenEstimator"):
        SPROConnector(list(ensemble.estimators_)).fit(X_train, y_train)
    with pytest.raises(ValueError, match="Cannot take modes"):
        SPROConnector(FrozenEstimator(MinMaxScaler().fit(X_train))).fit(X_train, y_train)
    other = DeepEnsembleClassifier(
        mode_template().set_params(max_epochs=1, module__hidden_units=(8,)), n_members=1
    ).fit(X_train, y_train)
    with pytest.raises(ValueError, match="another architecture"):
        SPROConnector([FrozenEstimator(ensemble.estimators_[0]), FrozenEstimator(other.estimators_[0])]).fit(
            X_train, y_train
        )
    with pytest.raises(ValueError, match="not trained on"):
        SPROConnector(FrozenEstimator(ensemble), n_connectors=1).fit(X_train, y_train + 100)


def test_pickle_pipeline_and_grid_search(digits, complex_):
    X_train, X_test, y_train, _ = digits
    restored = pickle.loads(pickle.dumps(complex_))
    np.testing.assert_array_equal(restored.predict_proba(X_test), complex_.predict_proba(X_test))
    pipe = make_pipeline(
        MinMaxScaler(),
        SPROConnector(
            mode_template().set_params(max_epochs=2), n_modes=2, connector_epochs=1, random_state=0
        ),
    )
    grid = GridSearchCV(pipe, {"sproconnector__n_connectors": [0, 1]}, cv=2, scoring="neg_log_loss")
    grid.fit(X_train[:300], y_train[:300])
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
