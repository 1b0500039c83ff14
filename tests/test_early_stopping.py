"""Validation-driven fitting (early_stopping=True): members and vertices keep
their best held-out epoch, a vertex joins a simplex only if it helps there."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

import skspro._validation
from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator, load, save
from skspro._inputs import EARLY_STOPPING_SPLIT, draw_seeds, split_seed, validate_fit_data
from skspro._validation import split_validation


@pytest.fixture(scope="module")
def overfitting():
    X, y = make_classification(400, 20, n_informative=6, n_classes=3, flip_y=0.15, random_state=0)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _template(**params):
    return default_estimator().set_params(
        **{"max_epochs": 30, "lr": 2e-2, "module__hidden_units": (64,), **params}
    )


def _espro(**params):
    settings = dict(
        n_members=3, n_vertices=2, vertex_epochs=8, n_samples=4, random_state=0, early_stopping=True
    )
    settings.update(params)
    return ESPROClassifier(_template(), n_iter_no_change=3, **settings)


def _held_out(model, X, y):
    """The held-out rows of a fit (the split's seed comes from the first member's)."""
    data = validate_fit_data(model, X, y)
    seed = split_seed(draw_seeds(model.random_state, 1)[0], EARLY_STOPPING_SPLIT)
    return split_validation(data, model.validation_fraction, seed, model.n_iter_no_change, "test")[1]


def _nll(proba, y, weight=None):
    return float(np.average(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)), weights=weight))


def test_members_stop_early_and_keep_their_best_epoch(overfitting):
    X, y = overfitting
    model = DeepEnsembleClassifier(_template(), n_members=2, random_state=0, early_stopping=True)
    model.set_params(n_iter_no_change=3).fit(X, y)
    held_out = _held_out(model, X, y)
    for net in model.estimators_:
        losses = net.history[:, "valid_loss"]
        assert len(losses) < 30  # it over-fits and stops
        assert len(losses) - 1 - int(np.argmin(losses)) == 3  # three epochs without improvement
        # the weights are the best epoch's: their held-out loss is the smallest recorded
        np.testing.assert_allclose(_nll(net.predict_proba(held_out.X), held_out.y), min(losses), rtol=1e-5)
    assert model.n_vertices_.tolist() == [0, 0]


def test_each_vertex_is_the_best_epochs_and_kept_only_if_it_helps(overfitting, monkeypatch):
    X, y = overfitting
    vertices = []
    record = skspro._validation.SimplexValidation.on_epoch_end

    def recording(self, net, **kwargs):
        record(self, net, **kwargs)
        vertices.append((net.history[-1, "valid_nll"], net.module_.vertex.detach().clone()))

    monkeypatch.setattr(skspro._validation.SimplexValidation, "on_epoch_end", recording)
    model = _espro().fit(X, y)
    held_out = _held_out(model, X, y)
    proba = model.predict_proba_networks(held_out.X)
    start = 0
    for i, (kept, nlls) in enumerate(zip(model.n_vertices_, model.validation_nlls_)):
        # accepted vertices lower the held-out NLL; a rejected one did not
        assert all(b < a for a, b in zip(nlls[: kept + 1], nlls[1 : kept + 1]))
        if kept < model.n_vertices:
            assert len(nlls) == kept + 2 and nlls[kept + 1] >= nlls[kept]
        # the stored score is the held-out NLL of the very prediction networks
        n = len(model.sample_weights_[i])
        np.testing.assert_allclose(_nll(proba[start : start + n].mean(0), held_out.y), nlls[kept], rtol=1e-5)
        member = model.estimators_[i].predict_proba(held_out.X)
        assert _nll(proba[start : start + n].mean(0), held_out.y) <= _nll(member, held_out.y) + 1e-6
        start += n
    # the first member's first vertex (if kept) is the epoch of the lowest held-out NLL
    if model.n_vertices_[0] >= 1:
        epochs = len(model.vertex_histories_[0][0])
        trained = vertices[:epochs]
        best = min(range(epochs), key=lambda e: trained[e][0])
        vertex = torch.cat([v[1].reshape(-1) for v in model.simplexes_[0].params.values()])
        np.testing.assert_array_equal(vertex.numpy(), trained[best][1].numpy())


def test_a_rejected_vertex_leaves_the_simplex_as_before(overfitting):
    X, y = overfitting
    model = _espro().fit(X, y)
    fewer = np.flatnonzero(model.n_vertices_ < model.n_vertices)
    assert len(fewer), "the data should make some simplex stop growing"
    i = int(fewer[0])
    kept = int(model.n_vertices_[i])
    assert model.simplexes_[i].n_vertices == kept + 1
    assert len(model.vertex_histories_[i]) == kept  # the rejected vertex's history is not kept
    assert np.isnan(model.log_volumes_[i, kept:]).all() and np.isfinite(model.log_volumes_[i, :kept]).all()
    smaller = _espro(n_vertices=kept).fit(X, y)  # the same member grown to the kept vertices only
    assert torch.equal(
        torch.cat([t.reshape(-1) for t in model.simplexes_[i].params.values()]),
        torch.cat([t.reshape(-1) for t in smaller.simplexes_[i].params.values()]),
    )
    np.testing.assert_array_equal(model.sample_weights_[i], smaller.sample_weights_[i])


def test_fits_are_reproducible_and_survive_save_and_load(overfitting, tmp_path):
    X, y = overfitting
    first, second = _espro().fit(X, y), _espro().fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.n_vertices_.tolist() == second.n_vertices_.tolist()
    other = _espro(random_state=1).fit(X, y)
    assert not np.array_equal(other.predict_proba(X), first.predict_proba(X))
    save(first, tmp_path / "model")
    restored = load(tmp_path / "model", _espro())
    np.testing.assert_array_equal(restored.predict_proba(X), first.predict_proba(X))
    assert restored.n_vertices_.tolist() == first.n_vertices_.tolist()


def test_off_by_default_and_the_members_seeds_do_not_move(overfitting):
    X, y = overfitting
    assert ESPROClassifier().early_stopping is False and DeepEnsembleClassifier().early_stopping is False
    plain = ESPROClassifier(
        _template(max_epochs=3), n_members=2, n_vertices=1, vertex_epochs=1, random_state=0
    )
    plain.fit(X, y)
    assert plain.validation_nlls_ == [[], []]
    assert [s.tolist() for s in draw_seeds(0, 3)[:2]] == [s.tolist() for s in draw_seeds(0, 2)]


def test_too_few_rows_per_class_are_refused_before_training(overfitting):
    X, y = overfitting
    y = y.copy()
    y[0] = 7  # a class with one row
    with pytest.raises(ValueError, match=r"early_stopping=True\) holds out .* the rarest class has 1 row"):
        _espro().fit(X, y)


def test_a_held_out_split_too_small_for_the_classes_says_so(overfitting):
    X, y = overfitting
    with pytest.raises(ValueError, match=r"1 held-out rows are fewer than the 3 classes"):
        _espro(validation_fraction=0.001).fit(X, y)
