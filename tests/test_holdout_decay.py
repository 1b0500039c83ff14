"""vertex_weight_decay="holdout": a probe member on half the rows chooses between no
vertex decay and "auto" by the held-out NLL of its simplex; the fitted model is then
the model fitted with the chosen decay."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler

import skspro._espro
import skspro._members
import skspro._training
from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator, load, save
from skspro.modules import SmallCNN


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(240, 12, n_informative=5, n_classes=3, flip_y=0.1, random_state=0)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _espro(estimator=None, **params):
    if estimator is None:
        estimator = default_estimator().set_params(max_epochs=8, lr=1e-2, module__hidden_units=(32,))
    settings = dict(n_members=2, n_vertices=1, vertex_epochs=3, n_samples=4, random_state=0)
    return ESPROClassifier(estimator, **{**settings, "vertex_weight_decay": "holdout", **params})


def _no_probe(*args, **kwargs):
    raise AssertionError("the probe ran")


def test_the_fitted_model_is_the_fit_with_the_chosen_decay(data):
    X, y = data
    model = _espro().fit(X, y)
    assert set(model.holdout_nlls_) == {"auto", 0.0}
    scores = model.holdout_nlls_
    assert scores["auto"] != scores[0.0]  # the decay changed the probe's simplex
    assert model.vertex_weight_decay_ == min(scores, key=scores.get)
    assert model.vertex_weight_decay == "holdout"  # the parameter is left as given
    chosen = _espro(vertex_weight_decay=model.vertex_weight_decay_).fit(X, y)
    # same members (their seeds come first), same vertices, same sample points: bit for bit
    np.testing.assert_array_equal(model.predict_proba_networks(X), chosen.predict_proba_networks(X))
    # the probe's training is counted in fit_time_, beside the members' and vertices'
    trained = model.member_fit_times_.sum() + np.nansum(model.vertex_fit_times_)
    assert 0 < model.holdout_fit_time_ and trained + model.holdout_fit_time_ <= model.fit_time_
    assert chosen.holdout_fit_time_ == 0.0
    again = _espro().fit(X, y)
    assert again.holdout_nlls_ == scores
    np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))


def test_the_probes_scores_decide(data, monkeypatch):
    X, y = data
    for scores, expected in (({"auto": 1.0, 0.0: 0.5}, 0.0), ({"auto": 0.5, 0.0: 1.0}, "auto")):
        monkeypatch.setattr(
            skspro._espro, "probe_vertex_weight_decay", lambda *a, s=scores, **k: (dict(s), 1.5)
        )
        model = _espro().fit(X, y)
        assert model.vertex_weight_decay_ == expected and model.holdout_nlls_ == scores
        assert model.holdout_fit_time_ == 1.5
        reference = _espro(vertex_weight_decay=expected).fit(X, y)
        np.testing.assert_array_equal(model.predict_proba(X), reference.predict_proba(X))


def test_a_decay_that_ruins_the_simplex_is_rejected_on_held_out_rows(data, monkeypatch):
    X, y = data
    monkeypatch.setattr(skspro._training, "AUTO_DECAY_PER_EPOCH", 0.6)  # "auto" removes 60 % per epoch
    model = _espro().fit(X, y)
    assert model.vertex_weight_decay_ == 0.0
    assert model.holdout_nlls_["auto"] > model.holdout_nlls_[0.0]


def test_networks_that_auto_does_not_decay_are_not_probed(monkeypatch):
    X, y = load_digits(return_X_y=True)
    X = (X[:200] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    template = default_estimator().set_params(
        module=SmallCNN, module__channels=4, module__n_classes=10, max_epochs=2
    )
    monkeypatch.setattr(skspro._espro, "probe_vertex_weight_decay", _no_probe)
    model = _espro(estimator=template).fit(X, y[:200])
    assert model.vertex_weight_decay_ == "auto" and model.holdout_nlls_ == {}
    assert model.vertex_histories_[0][0][-1, "vertex_weight_decay"] == 0.0


def test_a_half_without_every_class_is_refused_before_training(data, monkeypatch):
    X, y = data
    y = y.copy()
    y[0] = 7  # a class of one row cannot be on both sides
    monkeypatch.setattr(skspro._members, "fit_member", _no_probe)
    with pytest.raises(ValueError, match=r'vertex_weight_decay="holdout"\) holds out a stratified half'):
        _espro().fit(X, y)


@pytest.mark.parametrize("more", [{"n_vertices": 2}, {"n_members": 3}])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_warm_start_equals_the_fit_from_scratch(data, monkeypatch, more, early_stopping):
    X, y = data
    # the probe and the held-out splits do not depend on n_members or n_vertices
    scratch = _espro(early_stopping=early_stopping, n_iter_no_change=2, **more).fit(X, y)
    model = _espro(early_stopping=early_stopping, n_iter_no_change=2).fit(X, y)
    assert model.holdout_nlls_ == scratch.holdout_nlls_
    monkeypatch.setattr(skspro._espro, "probe_vertex_weight_decay", _no_probe)  # the choice is kept
    model.set_params(warm_start=True, **more).fit(X, y)
    assert model.vertex_weight_decay_ == scratch.vertex_weight_decay_
    np.testing.assert_array_equal(model.predict_proba_networks(X), scratch.predict_proba_networks(X))


def test_a_score_that_is_not_finite_loses(data, monkeypatch):
    X, y = data
    scores = {"auto": np.nan, 0.0: 9.0}
    monkeypatch.setattr(skspro._espro, "probe_vertex_weight_decay", lambda *a, **k: (dict(scores), 1.5))
    assert _espro().fit(X, y).vertex_weight_decay_ == 0.0


def test_files_keep_the_choice_and_the_probes_scores(data, tmp_path, monkeypatch):
    import json

    X, y = data
    model = _espro().fit(X, y)
    loaded = _saved_and_loaded(model, tmp_path / "model.pt")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.vertex_weight_decay == "holdout"
    assert loaded.vertex_weight_decay_ == model.vertex_weight_decay_
    assert loaded.holdout_nlls_ == model.holdout_nlls_ and set(loaded.holdout_nlls_) == {"auto", 0.0}
    assert loaded.holdout_fit_time_ == model.holdout_fit_time_ > 0
    # a warm start from the loaded model keeps the choice: the probe does not run again
    monkeypatch.setattr(skspro._espro, "probe_vertex_weight_decay", _no_probe)
    grown = loaded.set_params(warm_start=True, n_members=3).fit(X, y)
    assert grown.vertex_weight_decay_ == model.vertex_weight_decay_
    plain = _saved_and_loaded(_espro(vertex_weight_decay=0.0).fit(X, y), tmp_path / "plain.pt")
    assert plain.vertex_weight_decay_ == 0.0 and plain.holdout_nlls_ == {}
    # files written before the header kept the choice load without it
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    meta = json.loads(payload["meta"])
    del meta["fitted"]
    payload["meta"] = json.dumps(meta)
    torch.save(payload, tmp_path / "older.pt")
    older = load(tmp_path / "older.pt", _espro())
    assert (
        older.vertex_weight_decay_ is None and older.holdout_nlls_ == {} and np.isnan(older.holdout_fit_time_)
    )
    np.testing.assert_array_equal(older.predict_proba(X), model.predict_proba(X))
    # a header whose record is not one skspro writes is refused, naming it
    fitted = json.loads(torch.load(tmp_path / "model.pt", weights_only=True)["meta"])["fitted"]
    for bad in (
        {"vertex_weight_decay_": -1.0},
        {"vertex_weight_decay_": True},
        {"vertex_weight_decay_": float("inf")},
        {"holdout_nlls_": {"0.5": 1.0, "auto": 1.0}},
        {"holdout_nlls_": {"auto": 1.0}},  # the probe scores both
        {"holdout_fit_time_": -5.0},
        {"vertex_weight_decay_": 0.5},  # not a decay the probe chooses from
        {"other": 1},
    ):
        payload["meta"] = json.dumps({**meta, "fitted": {**fitted, **bad}})
        torch.save(payload, tmp_path / "bad.pt")
        with pytest.raises(ValueError, match="not a valid skspro weights file"):
            load(tmp_path / "bad.pt", _espro())
    # probe scores beside a setting that probes nothing
    payload["meta"] = json.dumps(
        {**meta, "params": {**meta["params"], "vertex_weight_decay": 0.0}, "fitted": fitted}
    )
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="probes nothing"):
        load(tmp_path / "bad.pt", _espro())


def test_a_decay_given_as_a_numpy_number_is_saved(data, tmp_path):
    X, y = data
    model = _espro(vertex_weight_decay=np.float32(0.5)).fit(X, y)
    loaded = _saved_and_loaded(model, tmp_path / "model.pt")
    assert loaded.vertex_weight_decay_ == pytest.approx(0.5)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def _saved_and_loaded(model, path):
    save(model, path)
    return load(path, _espro())  # the template the model was fitted with


def test_only_the_espro_has_the_fitted_decay(data):
    X, y = data
    template = default_estimator().set_params(max_epochs=2, module__hidden_units=(8,))
    model = DeepEnsembleClassifier(template, n_members=1, random_state=0).fit(X, y)
    assert not hasattr(model, "vertex_weight_decay_") and not hasattr(model, "holdout_nlls_")
    assert _espro(vertex_weight_decay="auto").fit(X, y).vertex_weight_decay_ == "auto"


@pytest.mark.parametrize(
    "settings, setting",
    [
        ({"vertex_weight_decay": "holdout"}, r'vertex_weight_decay="holdout"\) holds out a stratified half'),
        ({"vertex_weight_decay": 0.0, "early_stopping": True}, r"early_stopping=True\) holds out"),
    ],
)
def test_a_sampler_of_all_the_rows_is_refused_before_rows_are_held_out(data, monkeypatch, settings, setting):
    X, y = data
    sampler = torch.utils.data.RandomSampler(range(len(y)), generator=torch.Generator().manual_seed(0))
    template = default_estimator().set_params(max_epochs=2, iterator_train__sampler=sampler)
    template.set_params(iterator_train__shuffle=False)  # a sampler excludes shuffling
    monkeypatch.setattr(skspro._members, "fit_member", _no_probe)
    with pytest.raises(ValueError, match=setting + r".*iterator_train__sampler draws indices"):
        _espro(template, **settings).fit(X, y)


def test_a_batch_larger_than_the_probes_half_is_refused_before_training(data, monkeypatch):
    X, y = data  # 240 rows: every minibatch of 200 is dropped on the probe's 120
    template = default_estimator().set_params(max_epochs=2, batch_size=200, iterator_train__drop_last=True)
    monkeypatch.setattr(skspro._members, "fit_member", _no_probe)
    with pytest.raises(
        ValueError, match=r'"holdout"\) holds out .* its probe member .* no minibatch on the 120.* or "auto"'
    ):
        _espro(template).fit(X, y)
