"""What a production user hits: hostile or broken model files, concurrent and
interrupted saves, inputs beyond float32, and templates that cannot work.

Each crafted file is small and must be refused with a ``ValueError`` that
names the problem, within a second and without allocating what the file
declares. (Concurrent prediction: tests/test_concurrency.py; failures during
fits: tests/test_atomic_fits.py.)
"""

import copy
import json
import os
import resource
import threading
import time
import zipfile

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor

import skspro._io
from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator, load, save
from skspro.modules import MLP, SmallCNN


def tiny_template(**params):
    return default_estimator().set_params(**{"max_epochs": 2, "module__hidden_units": (8,), **params})


def module_template(module, **params):
    return default_estimator().set_params(module=module, max_epochs=2, **params)


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.fixture(scope="module")
def saved(wine, tmp_path_factory):
    """A fitted ESPRO, its file and the file's payload."""
    X, y = wine
    model = ESPROClassifier(
        tiny_template(), n_members=2, n_vertices=1, vertex_epochs=1, n_samples=2, random_state=0
    )
    model.fit(X, y)
    path = tmp_path_factory.mktemp("model") / "model.skspro"
    save(model, path)
    return model, path, torch.load(path, weights_only=True)


def _write(tmp_path, payload, name="crafted.skspro"):
    path = tmp_path / name
    torch.save(payload, path)
    return path


def _edit_meta(payload, **changes):
    payload = copy.deepcopy(payload)
    meta = json.loads(payload["meta"])
    meta.update(changes)
    payload["meta"] = json.dumps(meta)
    return payload


def _edit_member(payload, key, value, member=0):
    payload = copy.deepcopy(payload)
    if value is None:
        del payload["members"][member][key]
    else:
        payload["members"][member][key] = value
    return payload


def _first_param(payload):
    state = payload["members"][0]["module_state"]
    return next(iter(state))


def _crafted(payload):
    """name -> (crafted payload, part of the message that must be shown)."""
    name = _first_param(payload)
    state = payload["members"][0]["module_state"]
    weights = payload["members"][0]["sample_weights"]
    simplex = payload["members"][0]["simplex"]
    return {
        "stride-0 view of 80 GB": (
            _edit_member(payload, "module_state", {**state, name: torch.zeros(1).expand(20_000_000_000)}),
            "view of shape",
        ),
        "labels of dtype U100000000": (
            _edit_meta(payload, classes={"dtype": "<U100000000", "values": ["a", "b", "c"]}),
            "class labels of dtype",
        ),
        "20,000 members": (dict(payload, members=payload["members"][:1] * 20_000), "20000 members"),
        "members aliasing one storage": (
            dict(payload, members=payload["members"][:1] * 1000),
            "repeats one member",
        ),
        "template parameters in the file": (
            _edit_meta(payload, params={"estimator__module__hidden_units": [50000, 50000]}),
            "does not have",
        ),
        "input size of 1e9": (
            _edit_meta(payload, input_shape=[10**9], n_features_in=10**9, template=None),  # as 0.1.0 wrote
            "does not fit the template",
        ),
        "input size of 1e9, template settings recorded": (
            _edit_meta(payload, input_shape=[10**9], n_features_in=10**9),
            "module__input_dim=13; the template passed to load has module__input_dim=1000000000",
        ),
        "missing members": ({k: v for k, v in payload.items() if k != "members"}, "no list of members"),
        "missing key in a member": (_edit_member(payload, "simplex", None), "has no 'simplex'"),
        "missing key in the header": (
            dict(
                payload,
                meta=json.dumps({k: v for k, v in json.loads(payload["meta"]).items() if k != "classes"}),
            ),
            "has no 'classes'",
        ),
        "string format version": (
            _edit_meta(payload, format_version="1"),
            "'format_version' has the wrong type",
        ),
        "empty member list": (dict(payload, members=[]), "0 members"),
        "meta-device tensor": (
            _edit_member(payload, "sample_weights", torch.empty(weights.shape, device="meta")),
            "tensor on meta",
        ),
        "sparse tensor": (_edit_member(payload, "sample_weights", weights.to_sparse()), "sparse_coo"),
        "wrong simplex shape": (
            _edit_member(payload, "simplex", {k: v[:1] for k, v in simplex.items()}),
            "stores 2 members with \\[0, 1\\] vertices",
        ),
        "NaN weights": (
            _edit_member(
                payload, "module_state", {**state, name: torch.full_like(state[name], float("nan"))}
            ),
            "holds NaN",
        ),
        "negative sample weights": (
            _edit_member(payload, "sample_weights", weights - 1.0),
            "not points of the simplex",
        ),
        "n_features_in disagreeing with the module": (
            _edit_meta(payload, input_shape=[5], n_features_in=5, template=None),
            "does not fit the template",
        ),
        "n_features_in disagreeing with input_shape": (_edit_meta(payload, n_features_in=7), "disagrees"),
        "more networks than the header says": (_edit_meta(payload, n_networks=99), "header says 99"),
        "repeated class labels": (
            _edit_meta(payload, classes={"dtype": "<U1", "values": ["a", "a", "b"]}),
            "repeated",
        ),
    }


CASE_NAMES = [
    "stride-0 view of 80 GB",
    "labels of dtype U100000000",
    "20,000 members",
    "members aliasing one storage",
    "template parameters in the file",
    "input size of 1e9",
    "input size of 1e9, template settings recorded",
    "missing members",
    "missing key in a member",
    "missing key in the header",
    "string format version",
    "empty member list",
    "meta-device tensor",
    "sparse tensor",
    "wrong simplex shape",
    "NaN weights",
    "negative sample weights",
    "n_features_in disagreeing with the module",
    "n_features_in disagreeing with input_shape",
    "more networks than the header says",
    "repeated class labels",
]


def test_every_crafted_case_is_tested(saved):
    assert sorted(_crafted(saved[2])) == sorted(CASE_NAMES)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_crafted_files_are_refused_quickly_without_allocating(tmp_path, saved, case):
    _, _, payload = saved
    crafted, message = _crafted(payload)[case]
    path = _write(tmp_path, crafted)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        load(path, ESPROClassifier(tiny_template()))
    assert time.perf_counter() - start < 1.0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown_kib < 100 * 1024  # the file declared gigabytes


def test_a_compressed_record_that_would_inflate_is_refused_before_torch_reads_it(tmp_path, saved):
    _, path, _ = saved
    bomb = tmp_path / "bomb.skspro"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bomb, "w") as target:
        for record in source.infolist():
            target.writestr(record.filename, source.read(record), compress_type=zipfile.ZIP_STORED)
        target.writestr("model/data/999", b"\0" * (64 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2 * 2**20
    with pytest.raises(ValueError, match="is compressed"):
        load(bomb, ESPROClassifier(tiny_template()))


def test_a_refused_file_shows_no_torch_warning(tmp_path, recwarn):
    path = tmp_path / "evil.pt"
    torch.save({"meta": "{}", "members": [ValueError("an object")]}, path, pickle_protocol=4)
    with pytest.raises(ValueError, match="refused without running"):
        load(path, DeepEnsembleClassifier())
    assert not [w for w in recwarn if "pickle" in str(w.message).lower()]


def test_loading_with_a_template_of_another_size_names_the_parameter(saved, tmp_path):
    _, path, payload = saved
    other = ESPROClassifier(tiny_template(module__hidden_units=(16,)))
    with pytest.raises(
        ValueError, match=r"has module__hidden_units=\[8\]; .* has module__hidden_units=\[16\]"
    ):
        load(path, other)
    # a file of 0.1.0 does not record the template's settings: its shapes name the parameter
    old = _write(tmp_path, _edit_meta(payload, template=None))
    message = r"'layers.0.weight' has shape \(8, 13\) in the file and \(16, 13\) in the template"
    with pytest.raises(ValueError, match=message):
        load(old, other)


# ------------------------------------------------------------------- saving
def test_save_does_not_follow_a_planted_symlink(tmp_path, saved):
    model, _, _ = saved
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "model.skspro"
    os.symlink(victim, tmp_path / "model.skspro.partial")
    os.symlink(victim, tmp_path / ".model.skspro.partial")
    save(model, target)
    assert victim.read_text() == "keep me"
    assert load(target, ESPROClassifier(tiny_template())).n_networks_ == model.n_networks_


def test_concurrent_saves_to_one_path_all_succeed_and_leave_one_valid_file(tmp_path, saved):
    model, _, _ = saved
    target = tmp_path / "model.skspro"
    errors = []

    def save_some():
        try:
            for _ in range(5):
                save(model, target)
        except Exception as error:  # collected: the assertion below reports it
            errors.append(error)

    threads = [threading.Thread(target=save_some) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skspro"]  # no temporary file left
    restored = load(target, ESPROClassifier(tiny_template()))
    X = np.zeros((2, 13), dtype=np.float32)
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("fault", [KeyboardInterrupt, OSError])
def test_an_interrupted_save_keeps_the_old_file_and_leaves_nothing_behind(
    tmp_path, saved, monkeypatch, fault
):
    model, path, _ = saved
    target = tmp_path / "model.skspro"
    target.write_bytes(path.read_bytes())
    before = target.read_bytes()

    def half_written(payload, file):
        file.write(b"partial data")
        raise fault("disk full or Ctrl-C")

    monkeypatch.setattr(skspro._io.torch, "save", half_written)
    with pytest.raises(fault):
        save(model, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skspro"]


# ------------------------------------------------------------------- inputs
@pytest.mark.parametrize("value", [1e39, -1e40])
def test_values_beyond_float32_are_refused_at_fit_and_predict(wine, saved, value):
    X, y = wine
    model, _, _ = saved
    bad = X.astype(np.float64).copy()
    bad[4, 2] = value
    with pytest.raises(ValueError, match=r"beyond float32's range.*row 4"):
        model.predict_proba(bad)
    with pytest.raises(ValueError, match=r"beyond float32's range.*row 4"):
        DeepEnsembleClassifier(tiny_template(), n_members=1).fit(bad, y)


class Squares(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(13, 3)

    def forward(self, x):
        return self.linear(x * x)


def test_rows_that_overflow_inside_the_networks_raise_instead_of_predicting_class_0(wine):
    X, y = wine
    model = ESPROClassifier(
        module_template(Squares), n_members=1, n_vertices=1, vertex_epochs=1, random_state=0
    )
    model.fit(X, y)
    X = X[:3].copy()
    X[1] = 1e20  # finite in float32, its square is not
    for method in (model.predict, model.predict_proba, model.predict_proba_networks):
        with pytest.raises(ValueError, match=r"not finite for 1 rows \(first: row 1\)"):
            method(X)


def test_warm_start_with_other_features_is_refused(wine):
    X, y = wine
    model = DeepEnsembleClassifier(tiny_template(), n_members=1, warm_start=True, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"rows shaped as in the first fit \(13,\), got \(7,\)"):
        model.set_params(n_members=2).fit(X[:, :7], y)
    assert model.n_features_in_ == 13 and len(model.estimators_) == 1


class ReturnsTuple(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(13, 3)

    def forward(self, x):
        return self.linear(x), x


class Returns3D(ReturnsTuple):
    def forward(self, x):
        return self.linear(x)[:, None, :]


class Unpicklable(ReturnsTuple):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def forward(self, x):
        return self.linear(x)


TEMPLATE_ERRORS = {
    "wrong input size": (
        tiny_template(module=MLP, module__input_dim=30, module__n_classes=3),
        r"forward fails on the first rows of X \(shape \(2, 13\)\).*estimator__module__input_dim=13",
    ),
    "tuple output": (module_template(ReturnsTuple), "returns a tuple, not a tensor"),
    "3-D output": (
        module_template(Returns3D),
        r"shape \(2, 1, 3\) for 2 rows.*\(n_rows, n_classes\) = \(2, 3\)",
    ),
    "logits with NLLLoss": (
        NeuralNetClassifier(MLP, module__input_dim=13, module__n_classes=3, max_epochs=1, train_split=None),
        "criterion is NLLLoss.*CrossEntropyLoss",
    ),
    "regressor template": (
        NeuralNetRegressor(MLP, module__input_dim=13, module__n_classes=3),
        "NeuralNetRegressor",
    ),
    "module that cannot be copied": (module_template(Unpicklable), "cannot be copied"),
    "drop_last with a batch beyond the rows": (
        tiny_template(batch_size=500, iterator_train__drop_last=True),
        r"no minibatch on the 178 training rows \(batch_size=500 .*iterator_train__drop_last=False",
    ),
}


@pytest.mark.parametrize("case", list(TEMPLATE_ERRORS))
def test_templates_that_cannot_work_fail_before_training_with_the_fix(wine, monkeypatch, case):
    X, y = wine
    template, message = TEMPLATE_ERRORS[case]
    trained = []
    monkeypatch.setattr(NeuralNetClassifier, "fit", lambda self, *a, **k: trained.append(1))
    with pytest.raises(ValueError, match=message):
        ESPROClassifier(template, n_members=1, n_vertices=1).fit(X, y)
    assert not trained  # the cause was known before training: nothing was trained


def test_a_cnn_given_tabular_rows_says_what_shape_it_expects(wine):
    X, y = wine
    template = module_template(SmallCNN, module__n_classes=3)
    with pytest.raises(ValueError, match=r"images as \(n, channels, height, width\)"):
        DeepEnsembleClassifier(template, n_members=1).fit(X, y)


# ------------------------------------------- found by review: more file cases
def test_corrupt_zip_directories_are_refused_as_value_errors(tmp_path, saved):
    _, path, _ = saved
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x01\x02")
    data[at : at + 4] = b"PK\t\t"
    bad = tmp_path / "bad.skspro"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="zip structure is corrupt"):
        load(bad, ESPROClassifier(tiny_template()))


@pytest.mark.parametrize(
    "dtype, message",
    [(torch.int64, "torch.int64.*torch.float32"), (torch.float64, "torch.float64.*torch.float32")],
)
def test_tensors_of_another_dtype_than_the_template_are_refused(tmp_path, saved, dtype, message):
    _, _, payload = saved
    simplex = payload["members"][0]["simplex"]
    state = payload["members"][0]["module_state"]
    name = next(iter(state))
    for crafted in (
        _edit_member(payload, "module_state", {**state, name: state[name].to(dtype)}),
        _edit_member(payload, "simplex", {**simplex, name: simplex[name].to(dtype)}),
    ):
        with pytest.raises(ValueError, match=message):
            load(_write(tmp_path, crafted), ESPROClassifier(tiny_template()))


@pytest.mark.parametrize(
    "classes, message",
    [
        ({"dtype": "int64", "values": [2**70, 1, 2]}, "do not fit dtype"),
        ({"dtype": "float64", "values": ["a", "b", "c"]}, "do not fit dtype"),
        ({"dtype": "O", "values": [[1], [2], [3]]}, "not plain strings"),
    ],
)
def test_class_labels_that_do_not_fit_their_dtype_are_refused(tmp_path, saved, classes, message):
    _, _, payload = saved
    with pytest.raises(ValueError, match=message):
        load(_write(tmp_path, _edit_meta(payload, classes=classes)), ESPROClassifier(tiny_template()))


def test_curve_lengths_must_match_the_simplexes(tmp_path, saved):
    _, _, payload = saved
    crafted = _edit_member(payload, "log_volumes", [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="other curve lengths"):
        load(_write(tmp_path, crafted), ESPROClassifier(tiny_template()))


def test_connector_records_that_do_not_describe_the_complex_are_refused(tmp_path, wine):
    from skspro import SPROConnector

    X, y = wine
    model = SPROConnector(tiny_template(), n_modes=2, n_connectors=1, connector_epochs=1, random_state=0)
    path = tmp_path / "connector.skspro"
    save(model.fit(X, y), path)
    payload = torch.load(path, weights_only=True)
    fields = json.loads(payload["connector"])
    cases = {
        "not JSON": (dict(payload, connector="nope"), "not JSON"),
        "a list": (dict(payload, connector="[]"), "no valid n_connectors"),
        "no seed": (
            dict(payload, connector=json.dumps({k: v for k, v in fields.items() if k != "connector_seed"})),
            "no valid n_connectors",
        ),
        "strings": (dict(payload, connector=json.dumps({**fields, "log_volumes_": ["a"]})), "log_volumes_"),
        "too long": (
            dict(payload, connector=json.dumps({**fields, "log_volumes_": [0.0, 1.0]})),
            "log_volumes_",
        ),
        "another mode count": (
            dict(payload, modes=[dict(m) for m in payload["modes"] * 2]),
            "modes and 1 connectors",
        ),
    }
    for case, (crafted, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            load(_write(tmp_path, crafted, f"{case}.skspro"), SPROConnector(tiny_template()))


class WithMask(torch.nn.Module):
    """Legitimate state that the first checks refused: an infinite mask buffer,
    a transposed (non-contiguous) parameter, a layer shared under two names."""

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(13, 13)
        self.blocks = torch.nn.ModuleList([self.first, self.first])
        self.head = torch.nn.Parameter(torch.randn(13, 3).t())
        self.register_buffer("mask", torch.full((13,), float("-inf")))

    def forward(self, x):
        for block in self.blocks:
            x = torch.relu(block(x))
        return torch.nn.functional.linear(x + 0 * self.mask.clamp(min=0), self.head)


def test_legitimate_unusual_models_and_wide_labels_round_trip(tmp_path, wine):
    X, y = wine
    labels = np.array(["a", "b", "c"], dtype="U5000")[y]
    model = ESPROClassifier(
        module_template(WithMask), n_members=2, n_vertices=1, vertex_epochs=1, random_state=0
    )
    model.fit(X, labels)
    save(model, tmp_path / "model.skspro")
    restored = load(tmp_path / "model.skspro", ESPROClassifier(module_template(WithMask)))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    assert list(restored.classes_) == ["a", "b", "c"]


class ScaledLinear(torch.nn.Linear):
    def forward(self, x):
        return 5.0 * torch.nn.functional.linear(x, self.weight, self.bias) + 1.0


def scaled_chain():
    return torch.nn.Sequential(torch.nn.Linear(13, 16), torch.nn.ReLU(), ScaledLinear(16, 3))


@pytest.mark.parametrize("rows", [5, 178, 534])
def test_a_layer_subclass_with_its_own_forward_is_evaluated_as_written(wine, rows):
    X, y = wine
    model = DeepEnsembleClassifier(module_template(scaled_chain), n_members=2, random_state=0).fit(X, y)
    x = np.concatenate([X] * 3)[:rows]
    members = np.mean([net.predict_proba(x) for net in model.estimators_], axis=0)
    np.testing.assert_allclose(model.predict_proba(x), members, rtol=1e-5, atol=1e-6)


def test_values_beyond_float32_in_a_list_get_the_same_clear_error(wine, saved):
    model, _, _ = saved
    X = wine[0].astype(np.float64).tolist()
    X[3][2] = 1e39
    with pytest.raises(ValueError, match=r"beyond float32's range.*row 3"):
        model.predict_proba(X)


def test_drop_last_is_checked_against_the_rows_left_for_training_by_early_stopping(wine):
    X, y = wine  # 178 rows, 18 of them held out by early_stopping
    template = tiny_template(batch_size=170, iterator_train__drop_last=True)
    with pytest.raises(ValueError, match="no minibatch on the 160 training rows"):
        DeepEnsembleClassifier(template, n_members=1, early_stopping=True).fit(X, y)
    DeepEnsembleClassifier(template, n_members=1).fit(X, y)  # one 170-row step per epoch on all 178
