"""Every method that changes fitted state is all-or-nothing.

A failure (an error or Ctrl-C) is injected at each stage of each fitting
method -- training a member, a vertex or a connector, re-estimating
BatchNorm statistics, drawing the prediction networks, building the fitted
networks object -- and the estimator must equal its state before the call:
the same attributes, holding the same objects with the same contents, and
the same predictions to the last bit.
"""

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import StandardScaler

import skspro._base
import skspro._connector
import skspro._members
from skspro import DeepEnsembleClassifier, ESPROClassifier, SPROConnector, default_estimator


class Injected(Exception):
    pass


def tiny_template(**params):
    return default_estimator().set_params(**{"max_epochs": 2, "module__hidden_units": (8,), **params})


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def fingerprint(estimator) -> dict:
    """Each attribute, and for arrays and sequences their contents, as they are now."""
    out = {}
    for key, value in vars(estimator).items():
        if isinstance(value, np.ndarray):
            out[key] = ("array", value, value.copy())
        elif isinstance(value, list | tuple | dict):
            items = list(value.values()) if isinstance(value, dict) else list(value)
            out[key] = ("container", value, [id(item) for item in items])
        else:
            out[key] = ("object", value, None)
    return out


def assert_unchanged(estimator, before: dict, X, proba) -> None:
    now = vars(estimator)
    assert set(now) == set(before), f"attributes added or lost: {set(now) ^ set(before)}"
    for key, (kind, value, contents) in before.items():
        assert now[key] is value, f"{key} was replaced"
        if kind == "array":
            np.testing.assert_array_equal(now[key], contents, err_msg=key)
        elif kind == "container":
            items = list(value.values()) if isinstance(value, dict) else list(value)
            assert [id(item) for item in items] == contents, f"{key} was changed in place"
    if proba is not None:
        np.testing.assert_array_equal(estimator.predict_proba(X), proba)


def fail(*args, **kwargs):
    raise Injected("injected failure")


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


# (module, function name) patched to fail: the stage of the fit it stands for.
STAGES = {
    "member": (skspro._members, "_train_net"),
    "vertex": (skspro._members, "train_vertex"),
    "batchnorm": (skspro._members, "norm_statistics"),
    "prediction points": (skspro._members, "sample_simplex_weights"),
    "fitted networks": (skspro._base, "sampled_networks"),
    "connector": (skspro._connector, "train_vertex"),
    "connector batchnorm": (skspro._connector, "norm_statistics"),
    "connector points": (skspro._connector, "sample_simplex_weights"),
    "connector networks": (skspro._connector, "networks_of"),
}


def _espro(**params):
    settings = dict(n_members=2, n_vertices=1, vertex_epochs=1, n_samples=2, random_state=0)
    return ESPROClassifier(tiny_template(), **{**settings, **params})


def _connector(**params):
    settings = dict(
        estimator=tiny_template(), n_modes=2, n_connectors=1, connector_epochs=1, n_samples=2, random_state=0
    )
    return SPROConnector(**{**settings, **params})


# name -> (make the estimator (fitted or not), the user's change of settings before the
# call (or "grow" for grow_until_collapse instead of fit), the stages the call passes through)
CASES = {
    "espro fit": (lambda X, y: _espro(), None, ["member", "vertex", "batchnorm"]),
    "espro refit": (
        lambda X, y: _espro().fit(X, y),
        lambda m, X, y: m.set_params(random_state=1),
        ["member", "vertex", "batchnorm", "prediction points", "fitted networks"],
    ),
    "espro warm start": (
        lambda X, y: _espro(warm_start=True).fit(X, y),
        lambda m, X, y: m.set_params(n_members=3, n_vertices=2),
        ["member", "vertex", "batchnorm", "prediction points", "fitted networks"],
    ),
    "deep ensemble warm start": (
        lambda X, y: DeepEnsembleClassifier(
            tiny_template(), n_members=1, warm_start=True, random_state=0
        ).fit(X, y),
        lambda m, X, y: m.set_params(n_members=2),
        ["member", "fitted networks"],
    ),
    "connector fit": (
        lambda X, y: _connector(),
        None,
        ["member", "connector", "connector batchnorm", "connector points", "connector networks"],
    ),
    "connector refit on frozen modes": (
        lambda X, y: _connector(
            estimator=FrozenEstimator(DeepEnsembleClassifier(tiny_template(), n_members=2).fit(X, y))
        ).fit(X, y),
        lambda m, X, y: m.set_params(n_connectors=2),
        ["connector", "connector batchnorm", "connector points", "connector networks"],
    ),
    "connector grow_until_collapse": (
        lambda X, y: _connector(reg=1e-2).fit(X, y),
        "grow",
        ["connector", "connector batchnorm", "connector points", "connector networks"],
    ),
}

PARAMS = [(case, stage) for case, (_, _, stages) in CASES.items() for stage in stages]


@pytest.mark.parametrize("case, stage", PARAMS, ids=[f"{c}-{s}" for c, s in PARAMS])
def test_a_failure_at_any_stage_leaves_the_estimator_as_it_was(wine, monkeypatch, case, stage):
    X, y = wine
    make, change, _ = CASES[case]
    model = make(X, y)
    if callable(change):
        change(model, X, y)

    def call(model, X, y):
        if change == "grow":
            return model.grow_until_collapse(X, y, max_connectors=3, collapse_ratio=0.0)
        return model.fit(X, y)

    fitted = hasattr(model, "networks_")
    proba = model.predict_proba(X) if fitted else None
    before = fingerprint(model)
    module, name = STAGES[stage]
    monkeypatch.setattr(module, name, fail)
    with pytest.raises(Injected):
        call(model, X, y)
    monkeypatch.undo()
    assert_unchanged(model, before, X, proba)
    if fitted:  # and it still works: the same call succeeds once the fault is gone
        call(model, X, y)
        assert model.predict_proba(X[:3]).shape == (3, 3)


def test_an_interrupt_in_the_second_connector_of_grow_until_collapse_keeps_the_complex(wine, monkeypatch):
    """The bug of 0.1.0: histories were appended in place, so a failed grow left more
    histories than connectors."""
    X, y = wine
    model = _connector(reg=1e-2).fit(X, y)
    proba, before = model.predict_proba(X), fingerprint(model)
    original = skspro._connector.train_vertex
    calls = []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(skspro._connector, "train_vertex", second_fails)
    with pytest.raises(KeyboardInterrupt):
        model.grow_until_collapse(X, y, max_connectors=4, collapse_ratio=0.0)
    assert len(calls) == 2  # one connector was trained before the interrupt
    assert_unchanged(model, before, X, proba)
    assert len(model.connector_histories_) == model.n_connectors_ == 1


@pytest.mark.parametrize("stage", ["vertex", "batchnorm"])
def test_ctrl_c_during_a_warm_start_keeps_the_previous_model(wine, monkeypatch, stage):
    X, y = wine
    model = _espro(warm_start=True).fit(X, y).set_params(n_vertices=2)
    proba, before = model.predict_proba(X), fingerprint(model)
    module, name = STAGES[stage]
    monkeypatch.setattr(module, name, interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert_unchanged(model, before, X, proba)
