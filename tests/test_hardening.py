"""Bad input, numerical faults, interrupted fits, warm starts and model files."""

import os
import pickle
import signal

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import load_wine
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skspro import DeepEnsembleClassifier, ESPROClassifier, SPROConnector, default_estimator, load, save
from skspro.metrics import expected_calibration_error, negative_log_likelihood
from skspro.modules import MLP
from skspro.simplex import IncrementalLogVolume


def tiny_template(**params):
    return default_estimator().set_params(**{"max_epochs": 3, "module__hidden_units": (8,), **params})


def make(estimator_class, **params):
    if estimator_class is ESPROClassifier:
        defaults = dict(n_members=1, n_vertices=1, vertex_epochs=1, n_samples=2)
    elif estimator_class is SPROConnector:
        defaults = dict(n_modes=2, n_connectors=1, connector_epochs=1, n_samples=2)
    else:
        defaults = dict(n_members=1)
    return estimator_class(tiny_template(), random_state=0, **{**defaults, **params})


ESTIMATORS = [DeepEnsembleClassifier, ESPROClassifier, SPROConnector]


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _with(X, row, col, value):
    X = X.copy()
    X[row, col] = value
    return X


BAD_FIT = [
    ("nan in X", lambda X, y: (_with(X, 0, 0, np.nan), y), ValueError, "Input X contains NaN"),
    ("inf in X", lambda X, y: (_with(X, 3, 1, np.inf), y), ValueError, "Input X contains infinity"),
    ("one class", lambda X, y: (X, np.zeros(len(X))), ValueError, "at least 2 classes"),
    ("nan in y", lambda X, y: (X, np.where(np.arange(len(y)) == 0, np.nan, y)), ValueError, "y contains NaN"),
    ("empty X", lambda X, y: (X[:0], y[:0]), ValueError, "0 sample"),
    ("lengths differ", lambda X, y: (X, y[:-5]), ValueError, "inconsistent numbers of samples"),
    ("sparse X", lambda X, y: (sp.csr_matrix(X), y), TypeError, "dense data is required"),
    ("1-D X", lambda X, y: (X[:, 0], y), ValueError, "Expected 2D array"),
    (
        "string column",
        lambda X, y: (_obj(X), y),
        ValueError,
        "X must be numeric.*OneHotEncoder",
    ),
    (
        "bool and str-categorical columns",
        lambda X, y: (_mixed_frame(X), y),
        ValueError,
        "X must be numeric.*OneHotEncoder",
    ),
    ("continuous y", lambda X, y: (X, X[:, 0]), ValueError, "Unknown label type"),
    ("dict of inputs", lambda X, y: ({"x": X}, y), TypeError, "X is a dict of inputs .*one array of rows"),
]


def _mixed_frame(X):
    categories = pd.Categorical(np.where(np.arange(len(X)) % 2, "x", "y"))
    return pd.DataFrame(X[:, :3], columns=list("abc")).assign(flag=X[:, 3] > 2, kind=categories)


def _obj(X):
    X = X.astype(object)
    X[0, 0] = "red"
    return X


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
@pytest.mark.parametrize("case, corrupt, error, message", BAD_FIT, ids=[c[0] for c in BAD_FIT])
def test_bad_training_data_gets_a_clear_error(wine, estimator_class, case, corrupt, error, message):
    X, y = corrupt(*wine)
    with pytest.raises(error, match=message):
        make(estimator_class).fit(X, y)


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_bad_prediction_data_gets_a_clear_error(wine, estimator_class):
    X, y = wine
    model = make(estimator_class).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but .* is expecting 13 features"):
        model.predict(X[:, :5])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict_proba(_with(X, 0, 0, np.nan))
    with pytest.raises(ValueError, match="Expected 2D array"):
        model.predict(X[0])
    with pytest.raises(ValueError, match="X must be numeric"):
        model.predict(_obj(X))
    with pytest.raises(TypeError, match="one array of rows"):
        model.predict_proba({"x": X})


@pytest.mark.parametrize(
    "estimator_class, params, message",
    [
        (ESPROClassifier, {"n_vertices": -1}, "n_vertices"),
        (ESPROClassifier, {"n_samples": 0}, "n_samples"),
        (ESPROClassifier, {"reg": -0.1}, "reg"),
        (ESPROClassifier, {"vertex_weight_decay": -1.0}, "vertex_weight_decay"),
        (ESPROClassifier, {"vertex_weight_decay": "on"}, "vertex_weight_decay"),
        (ESPROClassifier, {"n_members": 0}, "n_members"),
        (ESPROClassifier, {"train_sampling": "half"}, "train_sampling"),
        (DeepEnsembleClassifier, {"n_members": 1.5}, "n_members"),
        (SPROConnector, {"n_connectors": -1}, "n_connectors"),
        (SPROConnector, {"n_modes": 0}, "n_modes"),
    ],
)
def test_parameters_out_of_range(wine, estimator_class, params, message):
    with pytest.raises(ValueError, match=f"The '{message}' parameter of {estimator_class.__name__} must be"):
        make(estimator_class, **params).fit(*wine)


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_wrong_module_output_size_fails_before_training(wine, estimator_class):
    X, y = wine
    template = tiny_template(module=MLP, module__input_dim=13, module__n_classes=7)
    model = make(estimator_class)
    model.set_params(estimator=template)
    message = r"returns outputs of shape \(2, 7\) for 2 rows, but y has 3 classes"
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


def test_metrics_reject_probabilities_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        expected_calibration_error([0, 1], [[0.5, 0.2], [0.3, 0.7]])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(0, 12), st.integers(1, 4)),
        elements=st.one_of(st.floats(-1e3, 1e3), st.just(np.nan), st.just(np.inf)),
    ),
    labels=st.lists(st.sampled_from(["a", "b", "c"]), min_size=0, max_size=12),
)
def test_random_inputs_either_work_or_fail_with_a_documented_error(X, labels):
    y = np.array(labels, dtype=object)
    before_X, before_y = X.copy(), y.copy()
    model = ESPROClassifier(
        tiny_template(max_epochs=1), n_members=1, n_vertices=1, vertex_epochs=1, n_samples=2, random_state=0
    )
    try:
        model.fit(X, y)
    except ValueError as error:
        assert any(
            text in str(error)
            for text in (
                "contains NaN",
                "contains infinity",
                "0 sample",
                "minimum of 2",
                "inconsistent numbers",
                "at least 2 classes",
            )
        ), str(error)
    else:
        proba = model.predict_proba(X)
        assert proba.shape == (len(X), len(model.classes_))
        np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-9)
        assert np.isfinite(negative_log_likelihood(y, proba, labels=model.classes_))
    np.testing.assert_array_equal(X, before_X)
    np.testing.assert_array_equal(y, before_y)


def test_user_inputs_are_not_modified(wine):
    X, y = wine
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(13)])
    series = pd.Series(np.array(["p", "q", "r"])[y])
    frame_copy, series_copy = frame.copy(), series.copy()
    model = make(ESPROClassifier).fit(frame, series)
    model.predict_proba(frame)
    pd.testing.assert_frame_equal(frame, frame_copy)
    pd.testing.assert_series_equal(series, series_copy)


def test_half_precision_inputs_work_or_say_what_to_do(wine):
    X, y = wine
    model = make(ESPROClassifier).fit(X.astype(np.float16), y)
    assert model.predict_proba(X.astype(np.float16)).shape == (len(X), 3)
    assert model.predict_proba(torch.tensor(X, dtype=torch.float16)).shape == (len(X), 3)
    with pytest.raises(TypeError, match="bfloat16 tensor.*X.float()"):
        model.predict_proba(torch.tensor(X, dtype=torch.bfloat16))


# --------------------------------------------------------------- numerical faults
def test_diverging_member_names_member_and_epoch(wine):
    X, y = wine
    template = tiny_template(lr=1e12, optimizer=torch.optim.SGD, max_epochs=5)
    with pytest.raises(
        FloatingPointError, match=r"member 1/1 \(epoch \d+, batch \d+\).*Lower the learning rate"
    ):
        DeepEnsembleClassifier(template, n_members=1, random_state=0).fit(X * 1e3, y)


def test_diverging_vertex_names_member_vertex_and_epoch(wine):
    X, y = wine
    model = ESPROClassifier(
        tiny_template(optimizer=torch.optim.SGD, lr=0.01),
        n_members=1,
        n_vertices=2,
        vertex_epochs=3,
        vertex_lr=1e14,
        random_state=0,
    )
    # by default the holdout probe grows its vertex first, and says so
    with pytest.raises(
        FloatingPointError, match=r"decay probe, vertex 1 \(epoch \d+.*Lower the learning rate"
    ):
        model.fit(X * 1e3, y)
    with pytest.raises(FloatingPointError, match=r"member 1/1, vertex 1 \(epoch \d+"):
        model.set_params(vertex_weight_decay=0.0).fit(X * 1e3, y)


def test_collapsed_simplex_gives_finite_volume_and_gradient():
    frozen = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    on_face = frozen[0].clone().requires_grad_(True)  # exactly on the face: height 0
    value = IncrementalLogVolume(frozen[:2])(on_face)
    value.backward()
    assert torch.isfinite(value) and value < -20
    assert torch.isfinite(on_face.grad).all()


def test_identical_modes_connect_without_nan(wine):
    X, y = wine
    ensemble = DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0).fit(X, y)
    net = ensemble.estimators_[0]
    connector = SPROConnector(
        [FrozenEstimator(net), FrozenEstimator(net)],
        n_connectors=2,
        connector_epochs=2,
        n_samples=2,
        random_state=0,
    ).fit(X, y)
    assert np.isfinite(connector.relative_heights_).all()
    assert np.isfinite(connector.predict_proba(X)).all()


# ------------------------------------------------------------- interruption
class InterruptAt(Callback):
    """Sends SIGINT (as Ctrl-C does) at the end of an epoch."""

    def __init__(self, epoch=2):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            os.kill(os.getpid(), signal.SIGINT)


def _callers_handler(signum, frame):
    raise KeyboardInterrupt


def test_interrupted_fit_leaves_the_estimator_as_it_was(wine):
    X, y = wine
    # The caller's own Ctrl-C handler, set here: what the process had before
    # depends on how it was started (a process started in the background by a
    # non-interactive shell inherits SIGINT ignored).
    previous = signal.signal(signal.SIGINT, _callers_handler)
    try:
        fresh = DeepEnsembleClassifier(tiny_template(callbacks=[InterruptAt()]), n_members=2, random_state=0)
        with pytest.raises(KeyboardInterrupt):
            fresh.fit(X, y)
        assert not hasattr(fresh, "estimators_") and not hasattr(fresh, "classes_")

        fitted = make(ESPROClassifier).fit(X, y)
        before = fitted.predict_proba(X)
        fitted.set_params(estimator=tiny_template(callbacks=[InterruptAt()]), n_members=2)
        with pytest.raises(KeyboardInterrupt):
            fitted.fit(X[:100], y[:100])
        np.testing.assert_array_equal(fitted.predict_proba(X), before)
        assert fitted.n_features_in_ == 13 and len(fitted.estimators_) == 1
        # The caller's Ctrl-C handler is back in place.
        assert signal.getsignal(signal.SIGINT) is _callers_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_failed_refit_keeps_the_previous_model(wine):
    X, y = wine
    model = make(ESPROClassifier, n_members=2).fit(X, y)
    before = model.predict_proba(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        model.fit(X, np.zeros(len(y)))
    np.testing.assert_array_equal(model.predict_proba(X), before)


# ---------------------------------------------------------------- warm start
def test_warm_start_adds_members_and_vertices_and_keeps_the_old_ones(wine):
    X, y = wine
    model = make(ESPROClassifier, n_members=1, n_vertices=1, warm_start=True).fit(X, y)
    first_vertices = {k: v.clone() for k, v in model.simplexes_[0].params.items()}
    first_net = model.estimators_[0]
    model.set_params(n_members=2, n_vertices=2).fit(X, y)
    assert model.estimators_[0] is first_net
    for name, stacked in model.simplexes_[0].params.items():
        assert torch.equal(stacked[:2], first_vertices[name])
    assert model.simplexes_[0].n_vertices == 3 and len(model.estimators_) == 2
    # The same random_state from scratch gives exactly the same model.
    scratch = make(ESPROClassifier, n_members=2, n_vertices=2).fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), scratch.predict_proba(X))


def test_growing_a_connector_keeps_its_vertices(wine):
    X, y = wine
    connector = make(SPROConnector, n_connectors=1, connector_epochs=2).fit(X, y)
    before = {k: v.clone() for k, v in connector.vertices_.params.items()}
    connector.grow_until_collapse(X, y, max_connectors=2, collapse_ratio=0.0)
    assert connector.n_connectors_ == 2
    for name, stacked in connector.vertices_.params.items():
        assert torch.equal(stacked[:3], before[name])


def test_warm_start_cannot_remove_members_or_change_classes(wine):
    X, y = wine
    model = make(DeepEnsembleClassifier, n_members=2, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="can add members but not remove them"):
        model.set_params(n_members=1).fit(X, y)
    with pytest.raises(ValueError, match="needs the classes of the first fit"):
        model.set_params(n_members=2).fit(X[y < 2], y[y < 2])


# --------------------------------------------------------------- model files
@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_save_and_load_round_trip(tmp_path, wine, estimator_class):
    X, y = wine
    labels = np.array(["x", "y", "z"])[y]
    model = make(estimator_class).fit(X, labels)
    save(model, tmp_path / "model.pt")
    restored = load(tmp_path / "model.pt", estimator_class(tiny_template()))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert restored.get_params()["random_state"] == 0
    assert not (tmp_path / "model.pt.partial").exists()


def test_a_file_with_a_pickle_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"meta": "{}", "members": [Payload()]}, path)
    with open(tmp_path / "plain.pkl", "wb") as file:
        pickle.dump(Payload(), file)
    for candidate in (path, tmp_path / "plain.pkl"):
        with pytest.raises(ValueError, match="not a skspro weights file.*refused without running them"):
            load(candidate, DeepEnsembleClassifier())
    assert not marker.exists()


def test_files_from_a_newer_format_or_another_class_are_refused(tmp_path, wine):
    import json

    X, y = wine
    model = make(DeepEnsembleClassifier).fit(X, y)
    save(model, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="holds an estimator of class 'DeepEnsembleClassifier'"):
        load(tmp_path / "model.pt", ESPROClassifier())
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    meta = json.loads(payload["meta"])
    meta["format_version"] = 99
    payload["meta"] = json.dumps(meta)
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="file format 99.*Upgrade skspro"):
        load(tmp_path / "future.pt", DeepEnsembleClassifier())
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a skspro weights file"):
        load(tmp_path / "junk.pt", DeepEnsembleClassifier())


def test_a_file_written_before_vertex_weight_decay_loads_with_the_decay_it_was_fitted_with(tmp_path, wine):
    import json

    X, y = wine
    model = make(ESPROClassifier, vertex_weight_decay=0.0).fit(X, y)
    save(model, tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    meta = json.loads(payload["meta"])
    del meta["params"]["vertex_weight_decay"]  # what files of earlier versions hold
    payload["meta"] = json.dumps(meta)
    torch.save(payload, tmp_path / "older.pt")
    loaded = load(tmp_path / "older.pt", ESPROClassifier(tiny_template()))
    assert loaded.vertex_weight_decay == 0.0  # not today's default "holdout"
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    stored = load(tmp_path / "model.pt", ESPROClassifier(tiny_template(), vertex_weight_decay=3.0))
    assert stored.vertex_weight_decay == 0.0
