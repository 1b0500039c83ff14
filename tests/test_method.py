"""What the method promises, with relative margins over several seeds.

Data: digits with a small training split (400 images) and a wide MLP, so that
one network overfits (train NLL ~0.03, test NLL ~0.17): that is where
ensembling matters. The gains measured here are small (a few per cent of
NLL); members trained to a train NLL of ~0.002 (60 epochs) left no gain at all
for a one-member ESPRO in our measurements, which the benchmarks follow up.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def small_digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, train_size=400, random_state=0, stratify=y)


def overfitting_template():
    return default_estimator().set_params(max_epochs=20, module__hidden_units=(256, 256), lr=2e-3)


def espro(n_members, seed, **params):
    # 400 rows are 7 steps per epoch. With one sampled network per step
    # (the default) and the member's learning rate, 6 vertex epochs move the
    # vertex too far (relative edge ~0.35) and the simplex lost to its own
    # member on 1 of 3 seeds (test NLL 0.190 vs 0.171); a quarter of the
    # learning rate (or 5 networks per step) keeps the gain on all seeds. On
    # the larger splits of benchmarks/quality.py the member's rate was as good
    # or better (validation tuning), so it stays the default.
    settings = dict(n_vertices=2, vertex_epochs=6, vertex_lr=5e-4, n_samples=8, random_state=seed)
    settings.update(params)
    return ESPROClassifier(overfitting_template(), n_members=n_members, **settings)


def nll(y, proba):
    return log_loss(y, proba, labels=np.arange(10))


@pytest.fixture(scope="module")
def one_member_runs(small_digits):
    X_train, _, y_train, _ = small_digits
    return [espro(1, seed).fit(X_train, y_train) for seed in SEEDS]


def test_a_single_network_overfits_here(small_digits, one_member_runs):
    X_train, X_test, y_train, y_test = small_digits
    for model in one_member_runs:
        net = model.estimators_[0]
        train_nll = nll(y_train, net.predict_proba(X_train))
        test_nll = nll(y_test, net.predict_proba(X_test))
        assert train_nll < 0.06 and test_nll > 3 * train_nll


def test_sampled_networks_keep_the_members_training_loss(small_digits, one_member_runs):
    X_train, _, y_train, _ = small_digits
    for model in one_member_runs:
        member_nll = nll(y_train, model.estimators_[0].predict_proba(X_train))
        sampled = [nll(y_train, p) for p in model.predict_proba_networks(X_train)]
        # Every sampled network stays in the low-loss region of the member ...
        assert max(sampled) < 3 * member_nll + 0.01
        # ... while the simplex is not a point: its edges are a sizeable
        # fraction of the weight norm.
        assert model.relative_edge_lengths_.min() > 0.05


def test_espro_beats_the_single_network_it_grew_from(small_digits, one_member_runs):
    _, X_test, _, y_test = small_digits
    single = np.array([nll(y_test, m.estimators_[0].predict_proba(X_test)) for m in one_member_runs])
    ensemble = np.array([nll(y_test, m.predict_proba(X_test)) for m in one_member_runs])
    assert (ensemble < single).sum() >= 2
    assert ensemble.mean() < 0.99 * single.mean()


def test_log_volume_grows_during_vertex_training_with_reg(small_digits, one_member_runs):
    X_train, _, y_train, _ = small_digits
    for model in one_member_runs:
        for history in model.vertex_histories_[0]:
            log_volumes = history[:, "log_volume"]
            assert log_volumes[-1] > log_volumes[0] + 0.5
    # A stronger regulariser gives a larger simplex (same member, same seeds).
    weak = espro(1, SEEDS[0], reg=0.0).fit(X_train, y_train)
    strong = espro(1, SEEDS[0], reg=1e-2).fit(X_train, y_train)
    assert (strong.log_volumes_ > weak.log_volumes_).all()


def test_espro_is_not_worse_than_a_deep_ensemble_of_as_many_members(small_digits):
    X_train, X_test, y_train, y_test = small_digits
    results = []
    for seed in SEEDS[:2]:
        deep = DeepEnsembleClassifier(overfitting_template(), n_members=3, random_state=seed).fit(
            X_train, y_train
        )
        simplexes = espro(3, seed).fit(X_train, y_train)
        results.append(
            (
                nll(y_test, deep.predict_proba(X_test)),
                nll(y_test, simplexes.predict_proba(X_test)),
                accuracy_score(y_test, deep.predict(X_test)),
                accuracy_score(y_test, simplexes.predict(X_test)),
            )
        )
    de_nll, espro_nll, de_acc, espro_acc = np.mean(results, axis=0)
    assert espro_nll <= 1.05 * de_nll
    assert espro_acc >= de_acc - 0.01
