"""``memory``: trained members and vertices reused across fits, never wrongly.

Every change a member depends on (template, one value of X, seed, class
labels, device kind) must miss the cache; settings it does not depend on
must hit it, with results equal to an uncached fit to the last bit. A bad
entry is a miss with a warning, never a crash or a silent misuse.
"""

import os
import threading
import warnings
from collections import Counter

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, RandomizedSearchCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, LRScheduler

import skspro._members
import skspro._memory
from skspro import DeepEnsembleClassifier, ESPROClassifier, SPROConnector, default_estimator
from skspro._fingerprint import Uncacheable, fingerprint
from skspro.modules import MLP

WINE_SIZES = {"module__input_dim": 13, "module__n_classes": 3}  # for modules other than skspro's MLP
# "auto", not the default "holdout": these tests count the members' and vertices' trainings and
# entries; the holdout probe's own entries are tested in tests/test_holdout_decay.py.
SETTINGS = dict(
    n_members=2, n_vertices=1, vertex_epochs=2, n_samples=3, random_state=0, vertex_weight_decay="auto"
)


def tiny_template(**params):
    return default_estimator().set_params(**{"max_epochs": 3, "module__hidden_units": (8,), **params})


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.fixture
def trainings(monkeypatch):
    """How many member nets and vertices were trained in this process."""
    counts = Counter()
    fit, train_vertex = NeuralNetClassifier.fit, skspro._members.train_vertex

    def counting_fit(self, *args, **kwargs):
        if type(self) is NeuralNetClassifier:
            counts["members"] += 1
        return fit(self, *args, **kwargs)

    def counting_vertex(*args, **kwargs):
        counts["vertices"] += 1
        return train_vertex(*args, **kwargs)

    monkeypatch.setattr(NeuralNetClassifier, "fit", counting_fit)
    monkeypatch.setattr(skspro._members, "train_vertex", counting_vertex)
    return counts


def entries(cache):
    folder = os.path.join(cache, "joblib", "skspro-members")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def assert_same_fit(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    for net_a, net_b in zip(a.estimators_, b.estimators_):
        for (name, p), (_, q) in zip(net_a.module_.state_dict().items(), net_b.module_.state_dict().items()):
            assert torch.equal(p, q), name


# ------------------------------------------------------------------ hits
def test_fits_that_differ_in_simplex_settings_train_each_member_once(tmp_path, wine, trainings):
    X, y = wine
    reference = ESPROClassifier(tiny_template(), **SETTINGS).fit(X, y)
    trainings.clear()
    cold = ESPROClassifier(tiny_template(), memory=str(tmp_path), **SETTINGS).fit(X, y)
    assert trainings == {"members": 2, "vertices": 2}
    assert_same_fit(cold, reference, X)
    np.testing.assert_array_equal(cold.log_volumes_, reference.log_volumes_)

    trainings.clear()
    warm = ESPROClassifier(tiny_template(), memory=str(tmp_path), **SETTINGS).fit(X, y)
    assert trainings == {}  # nothing trained
    assert_same_fit(warm, reference, X)
    np.testing.assert_array_equal(warm.member_fit_times_, cold.member_fit_times_)
    assert [h.to_list() for h in warm.vertex_histories_[0]] == [
        h.to_list() for h in cold.vertex_histories_[0]
    ]
    assert warm.estimators_[0].history.to_list() == cold.estimators_[0].history.to_list()
    np.testing.assert_array_equal(warm.estimators_[0].classes_, reference.estimators_[0].classes_)
    assert set(vars(warm.estimators_[0])) == set(vars(reference.estimators_[0]))
    for a, b in zip(
        warm.estimators_[0].optimizer_.state_dict()["state"].values(),
        reference.estimators_[0].optimizer_.state_dict()["state"].values(),
    ):
        assert all(torch.equal(a[k], b[k]) for k in a)

    # Other simplex settings: the members are reused, the vertices retrained;
    # one more vertex reuses the first.
    trainings.clear()
    other = ESPROClassifier(tiny_template(), memory=str(tmp_path), **{**SETTINGS, "vertex_lr": 3e-3}).fit(
        X, y
    )
    assert trainings == {"vertices": 2}
    uncached = ESPROClassifier(tiny_template(), **{**SETTINGS, "vertex_lr": 3e-3}).fit(X, y)
    assert_same_fit(other, uncached, X)
    trainings.clear()
    longer = ESPROClassifier(tiny_template(), memory=str(tmp_path), **{**SETTINGS, "n_vertices": 2}).fit(X, y)
    assert trainings == {"vertices": 2}  # vertex 2 of each member only
    assert_same_fit(longer, ESPROClassifier(tiny_template(), **{**SETTINGS, "n_vertices": 2}).fit(X, y), X)


def test_deep_ensemble_and_espro_share_their_members(tmp_path, wine, trainings):
    X, y = wine
    ensemble = DeepEnsembleClassifier(tiny_template(), n_members=2, random_state=0, memory=tmp_path).fit(X, y)
    trainings.clear()
    espro = ESPROClassifier(tiny_template(), memory=joblib.Memory(tmp_path, verbose=0), **SETTINGS).fit(X, y)
    assert trainings == {"vertices": 2}
    for a, b in zip(ensemble.simplexes_, espro.simplexes_):
        for name in a.params:
            assert torch.equal(a.params[name][0], b.params[name][0])


def test_connector_trains_its_modes_once_across_connector_settings(tmp_path, wine, trainings):
    X, y = wine
    params = dict(n_modes=2, n_connectors=1, connector_epochs=1, n_samples=2, random_state=0)
    SPROConnector(tiny_template(), memory=tmp_path, **params).fit(X, y)
    assert trainings["members"] == 2
    trainings.clear()
    other = {**params, "n_connectors": 2, "reg": 1e-3}
    cached = SPROConnector(tiny_template(), memory=tmp_path, **other).fit(X, y)
    assert trainings["members"] == 0
    uncached = SPROConnector(tiny_template(), **other).fit(X, y)
    np.testing.assert_array_equal(cached.predict_proba(X), uncached.predict_proba(X))
    np.testing.assert_array_equal(cached.log_volumes_, uncached.log_volumes_)


def test_warm_start_with_memory_equals_a_fit_from_scratch(tmp_path, wine):
    X, y = wine
    model = ESPROClassifier(tiny_template(), memory=tmp_path, warm_start=True, **SETTINGS).fit(X, y)
    model.set_params(n_vertices=2, n_members=3).fit(X, y)
    scratch = ESPROClassifier(tiny_template(), **{**SETTINGS, "n_vertices": 2, "n_members": 3}).fit(X, y)
    assert_same_fit(model, scratch, X)


def test_no_memory_and_a_memory_without_location_store_nothing(tmp_path, wine, trainings):
    X, y = wine
    ESPROClassifier(tiny_template(), memory=joblib.Memory(None), **SETTINGS).fit(X, y)
    ESPROClassifier(tiny_template(), memory=joblib.Memory(None), **SETTINGS).fit(X, y)
    assert trainings["members"] == 4


def test_memory_clear_removes_the_entries(tmp_path, wine):
    X, y = wine
    memory = joblib.Memory(tmp_path, verbose=0)
    DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=memory).fit(X, y)
    assert len(entries(tmp_path)) == 1
    memory.clear(warn=False)
    assert entries(tmp_path) == []


# ---------------------------------------------------------------- misses
class Doubled(MLP):
    """An MLP of another class."""


def edited_mlp():
    """A class of the same module and name as MLP whose code differs."""

    class MLP(skspro.modules.MLP):
        def forward(self, x):
            return 2 * super().forward(x)

    MLP.__module__, MLP.__qualname__ = "tests.user_code", "MLP"
    return MLP


def same_named_mlp():
    class MLP(skspro.modules.MLP):
        def forward(self, x):
            return super().forward(x)

    MLP.__module__, MLP.__qualname__ = "tests.user_code", "MLP"
    return MLP


def changed_value(X):
    X = X.copy()
    X[17, 3] = np.nextafter(X[17, 3], np.float32(np.inf))  # the smallest change float32 has
    return X


# (what changes, template, X, y, random_state): each must retrain both members.
CHANGES = {
    "max_epochs": lambda X, y: (tiny_template(max_epochs=4), X, y, 0),
    "lr by one ulp": lambda X, y: (tiny_template(lr=np.nextafter(1e-3, 1.0)), X, y, 0),
    "hidden units": lambda X, y: (tiny_template(module__hidden_units=(9,)), X, y, 0),
    "module class": lambda X, y: (tiny_template(module=Doubled, **WINE_SIZES), X, y, 0),
    "criterion": lambda X, y: (tiny_template(criterion=torch.nn.MultiMarginLoss), X, y, 0),
    "optimizer": lambda X, y: (tiny_template(optimizer=torch.optim.SGD), X, y, 0),
    "batch size": lambda X, y: (tiny_template(batch_size=63), X, y, 0),
    "callback setting": lambda X, y: (
        tiny_template(callbacks=[LRScheduler("StepLR", step_size=1, gamma=0.5)]),
        X,
        y,
        0,
    ),
    "one value of X": lambda X, y: (tiny_template(), changed_value(X), y, 0),
    "seed": lambda X, y: (tiny_template(), X, y, 1),
    "class labels": lambda X, y: (tiny_template(), X, y + 10, 0),  # same encoded y
    "label dtype": lambda X, y: (tiny_template(), X, y.astype(np.float64), 0),
    "one label": lambda X, y: (tiny_template(), X, np.where(np.arange(len(y)) == 5, (y + 1) % 3, y), 0),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_a_member_depends_on_misses(change, tmp_path, wine, trainings):
    X, y = wine
    base_template = tiny_template(callbacks=[LRScheduler("StepLR", step_size=2, gamma=0.5)])
    if change == "callback setting":  # the baseline has the callback with another step size
        DeepEnsembleClassifier(base_template, n_members=2, random_state=0, memory=tmp_path).fit(X, y)
    else:
        DeepEnsembleClassifier(tiny_template(), n_members=2, random_state=0, memory=tmp_path).fit(X, y)
    template, X2, y2, seed = CHANGES[change](X, y)
    trainings.clear()
    changed = DeepEnsembleClassifier(template, n_members=2, random_state=seed, memory=tmp_path).fit(X2, y2)
    assert trainings["members"] == 2, change
    uncached = DeepEnsembleClassifier(template, n_members=2, random_state=seed).fit(X2, y2)
    np.testing.assert_array_equal(changed.predict_proba(X2), uncached.predict_proba(X2))


def test_same_class_name_with_other_code_misses(tmp_path, wine, trainings):
    X, y = wine
    DeepEnsembleClassifier(
        tiny_template(module=same_named_mlp(), **WINE_SIZES), n_members=1, random_state=0, memory=tmp_path
    ).fit(X, y)
    trainings.clear()
    DeepEnsembleClassifier(
        tiny_template(module=same_named_mlp(), **WINE_SIZES), n_members=1, random_state=0, memory=tmp_path
    ).fit(X, y)
    assert trainings["members"] == 0  # the same code under the same name: a hit
    DeepEnsembleClassifier(
        tiny_template(module=edited_mlp(), **WINE_SIZES), n_members=1, random_state=0, memory=tmp_path
    ).fit(X, y)
    assert trainings["members"] == 1


def test_device_kind_and_thread_count_are_part_of_the_key(tmp_path, wine, trainings, monkeypatch):
    X, y = wine
    DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=tmp_path).fit(X, y)
    kind = skspro._memory.device_kind

    def other_device(device):
        return {**kind(device), "type": "cuda", "name": "NVIDIA H200"}

    monkeypatch.setattr(skspro._memory, "device_kind", other_device)
    trainings.clear()
    DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=tmp_path).fit(X, y)
    assert trainings["members"] == 1
    monkeypatch.setattr(skspro._memory, "device_kind", kind)
    previous = torch.get_num_threads()
    torch.set_num_threads(2 if previous == 1 else 1)
    try:
        DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=tmp_path).fit(X, y)
    finally:
        torch.set_num_threads(previous)
    assert trainings["members"] == 2


def test_what_the_members_do_not_see_is_not_part_of_the_key(tmp_path, wine, trainings, capsys):
    """Printing, and X in float64 (members train on its float32 cast), hit the cache."""
    X, y = wine
    DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=tmp_path).fit(X, y)
    trainings.clear()
    DeepEnsembleClassifier(
        tiny_template(verbose=0), n_members=1, random_state=0, memory=tmp_path, verbose=1
    ).fit(X, y)
    model = DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=tmp_path)
    model.fit(X.astype(np.float64), y)
    assert trainings["members"] == 0
    uncached = DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0).fit(
        X.astype(np.float64), y
    )
    assert_same_fit(model, uncached, X)


def test_vertex_settings_are_part_of_the_vertex_key(tmp_path, wine, trainings):
    X, y = wine
    ESPROClassifier(tiny_template(), memory=tmp_path, **SETTINGS).fit(X, y)
    for change in (
        {"vertex_epochs": 3},
        {"reg": 1e-3},
        {"vertex_weight_decay": 0.5},
        {"n_train_samples": 2},
        {"train_sampling": "full", "n_train_samples": 2},
    ):
        trainings.clear()
        ESPROClassifier(tiny_template(), memory=tmp_path, **{**SETTINGS, **change}).fit(X, y)
        assert trainings == {"vertices": 2}, change
    trainings.clear()
    ESPROClassifier(tiny_template(), memory=tmp_path, **{**SETTINGS, "n_samples": 5}).fit(X, y)
    assert trainings == {}


def test_the_rule_behind_auto_vertex_decay_is_part_of_the_vertex_key(tmp_path, wine, trainings, monkeypatch):
    from skspro import _training

    X, y = wine
    template = tiny_template()  # an MLP: "auto" decays its vertices
    settings = SETTINGS
    ESPROClassifier(template, memory=tmp_path, **settings).fit(X, y)
    trainings.clear()
    ESPROClassifier(template, memory=tmp_path, **settings).fit(X, y)
    assert trainings == {}
    monkeypatch.setattr(_training, "AUTO_DECAY_PER_EPOCH", 2 * _training.AUTO_DECAY_PER_EPOCH)
    ESPROClassifier(template, memory=tmp_path, **settings).fit(X, y)
    assert trainings == {"vertices": 2}


def test_fingerprints_tell_code_values_and_containers_apart():
    assert fingerprint(1) != fingerprint(1.0) != fingerprint(True)
    assert fingerprint(0.0) != fingerprint(-0.0)
    assert fingerprint([1, 2]) != fingerprint((1, 2))
    assert fingerprint(np.float32(1)) != fingerprint(np.float64(1))
    assert fingerprint(np.zeros(3, np.float32)) != fingerprint(np.zeros(3, np.float64))
    assert fingerprint(lambda x: x + 1) != fingerprint(lambda x: x + 2)

    def scaled(k):
        return lambda x: k * x

    assert fingerprint(scaled(2)) != fingerprint(scaled(3))  # closures by their contents
    assert fingerprint(scaled(2)) == fingerprint(scaled(2))
    assert fingerprint(LRScheduler("StepLR", step_size=1)) != fingerprint(LRScheduler("StepLR", step_size=2))
    assert fingerprint(torch.ones(2)) != fingerprint(torch.ones(2, dtype=torch.float64))
    with pytest.raises(Uncacheable):
        fingerprint(threading.Lock())


class Opaque:
    """Copies as itself, has no attributes, and does not pickle (like some C objects)."""

    __slots__ = ()

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("cannot pickle Opaque")


class Holding(Callback):
    def __init__(self, thing=None):
        self.thing = thing


def test_a_template_that_cannot_be_fingerprinted_trains_without_memory(tmp_path, wine, trainings):
    X, y = wine
    template = tiny_template(callbacks=[("holding", Holding(Opaque()))])
    with pytest.warns(UserWarning, match="memory is not used for this fit.*Opaque"):
        DeepEnsembleClassifier(template, n_members=1, random_state=0, memory=tmp_path).fit(X, y)
    assert trainings["members"] == 1
    assert entries(tmp_path) == []


# ------------------------------------------------------------ bad entries
def corrupt(path):
    """One bit of the largest tensor flipped: the archive stays readable, the content is wrong."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        record = max((r for r in archive.infolist() if "/data/" in r.filename), key=lambda r: r.file_size)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack(
        "<HH", data[record.header_offset + 26 : record.header_offset + 30]
    )
    start = record.header_offset + 30 + name_length + extra_length
    data[start + record.file_size // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def junk(path):
    path.write_bytes(b"not an archive at all")


def swap(path):
    """Another entry's (valid) file under this entry's name."""
    others = [p for p in path.parent.iterdir() if p != path and p.name.startswith(path.name.split("-")[0])]
    path.write_bytes(others[0].read_bytes())


def pickled(path):
    import pickle

    path.write_bytes(pickle.dumps({"meta": "{}"}))


@pytest.mark.parametrize("damage", [corrupt, truncate, junk, swap, pickled])
@pytest.mark.parametrize("kind", ["net", "vertex"])
def test_a_bad_entry_is_a_miss_with_a_warning_and_is_overwritten(damage, kind, tmp_path, wine, trainings):
    X, y = wine
    reference = ESPROClassifier(tiny_template(), **SETTINGS).fit(X, y)
    ESPROClassifier(tiny_template(), memory=tmp_path, **SETTINGS).fit(X, y)
    folder = tmp_path / "joblib" / "skspro-members"
    victim = sorted(folder.glob(f"{kind}-*.pt"))[0]
    damage(victim)
    trainings.clear()
    with pytest.warns(UserWarning, match="Ignoring the skspro cache entry"):
        model = ESPROClassifier(tiny_template(), memory=tmp_path, **SETTINGS).fit(X, y)
    assert trainings["members" if kind == "net" else "vertices"] >= 1
    assert_same_fit(model, reference, X)
    trainings.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: no warning, nothing trained
        again = ESPROClassifier(tiny_template(), memory=tmp_path, **SETTINGS).fit(X, y)
    assert trainings == {}
    assert_same_fit(again, reference, X)
    assert not list(folder.glob("*.partial"))


def test_an_entry_is_read_without_running_code_from_it(tmp_path, wine):
    """A pickle planted under an entry's name is refused before it is unpickled."""
    X, y = wine
    DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=tmp_path).fit(X, y)
    (victim,) = (tmp_path / "joblib" / "skspro-members").glob("net-*.pt")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"meta": "{}", "x": Payload()}, victim)
    with pytest.warns(UserWarning, match="Ignoring"):
        DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=tmp_path).fit(X, y)
    assert not marker.exists()


# ---------------------------------------------------- validation, safety
@pytest.mark.parametrize("memory", [3, ["dir"], object()])
def test_memory_of_a_wrong_type_is_refused_before_training(memory, wine, trainings):
    X, y = wine
    with pytest.raises(InvalidParameterError, match="memory"):
        ESPROClassifier(tiny_template(), memory=memory, **SETTINGS).fit(X, y)
    assert trainings == {}


def test_a_directory_that_cannot_be_created_is_refused_before_training(tmp_path, wine, trainings):
    X, y = wine
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot create the cache folder"):
        ESPROClassifier(tiny_template(), memory=str(blocker), **SETTINGS).fit(X, y)
    assert trainings == {}

    class NoLocation:
        def cache(self, func):
            return func

    with pytest.raises(ValueError, match="a joblib.Memory with a local location"):
        ESPROClassifier(tiny_template(), memory=NoLocation(), **SETTINGS).fit(X, y)


def test_nothing_the_user_passed_is_modified(tmp_path, wine):
    X, y = wine
    X_before, y_before = X.copy(), y.copy()
    template = tiny_template()
    params = template.get_params(deep=False)
    memory = joblib.Memory(tmp_path, verbose=0)
    model = ESPROClassifier(template, memory=memory, **SETTINGS)
    model.fit(X, y)
    model.fit(X, y)
    assert model.memory is memory and memory.location == tmp_path
    assert template.get_params(deep=False).keys() == params.keys()
    assert not hasattr(template, "module_")
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


def test_an_interrupted_store_leaves_the_estimator_and_the_folder_as_they_were(tmp_path, wine, monkeypatch):
    X, y = wine
    model = ESPROClassifier(tiny_template(), memory=tmp_path, **SETTINGS).fit(X, y)
    proba = model.predict_proba(X)
    members = model._members
    replace = os.replace

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    before = entries(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        model.set_params(vertex_lr=5e-3).fit(X, y)  # members hit, the first new vertex is stored
    monkeypatch.setattr(os, "replace", replace)
    assert model._members is members
    np.testing.assert_array_equal(model.predict_proba(X), proba)
    assert entries(tmp_path) == before  # no partial file left
    model.fit(X, y)  # and the next fit works
    assert len(entries(tmp_path)) == len(before) + 2


def test_a_failed_fit_keeps_what_it_stored_for_the_next_fit(tmp_path, wine, trainings, monkeypatch):
    X, y = wine
    model = ESPROClassifier(tiny_template(), memory=tmp_path, **SETTINGS)
    original = skspro._members.sample_simplex_weights

    def fail(*args, **kwargs):
        raise RuntimeError("injected after training")

    monkeypatch.setattr(skspro._members, "sample_simplex_weights", fail)
    with pytest.raises(RuntimeError, match="injected"):
        model.fit(X, y)
    assert not hasattr(model, "_members")  # the estimator is as before: unfitted
    monkeypatch.setattr(skspro._members, "sample_simplex_weights", original)
    assert len(entries(tmp_path)) == 2  # the first member and its vertex, stored before the failure
    trainings.clear()
    model.fit(X, y)
    assert trainings == {"members": 1, "vertices": 1}  # only the second member is trained
    assert_same_fit(model, ESPROClassifier(tiny_template(), **SETTINGS).fit(X, y), X)


def test_a_failing_write_warns_and_the_fit_goes_on(tmp_path, wine, monkeypatch):
    X, y = wine

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.warns(UserWarning, match="not stored in memory.*No space left"):
        model = ESPROClassifier(tiny_template(), memory=tmp_path, **SETTINGS).fit(X, y)
    monkeypatch.undo()
    assert_same_fit(model, ESPROClassifier(tiny_template(), **SETTINGS).fit(X, y), X)
    assert entries(tmp_path) == []


def test_concurrent_writers_of_one_entry_leave_a_valid_entry(tmp_path, wine):
    X, y = wine
    errors = []

    def fit():
        try:
            DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=tmp_path).fit(X, y)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=fit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [name.split("-")[0] for name in entries(tmp_path)] == ["net"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DeepEnsembleClassifier(tiny_template(), n_members=1, random_state=0, memory=tmp_path).fit(X, y)


# ------------------------------------------------------------- searches
def search_scores(search):
    results = search.cv_results_
    return {k: v for k, v in results.items() if "test_score" in k or "rank" in k}, search.best_params_


@pytest.mark.parametrize(
    "make_search",
    [
        lambda est, **kw: GridSearchCV(est, {"vertex_lr": [1e-3, 3e-3], "n_vertices": [1, 2]}, **kw),
        lambda est, **kw: RandomizedSearchCV(
            est, {"vertex_lr": [1e-3, 3e-3, 1e-2], "reg": [0.0, 1e-3]}, n_iter=3, random_state=0, **kw
        ),
        lambda est, **kw: HalvingGridSearchCV(
            est, {"vertex_lr": [1e-3, 3e-3, 1e-2]}, factor=2, min_resources=90, random_state=0, **kw
        ),
    ],
    ids=["grid", "randomized", "halving"],
)
def test_searches_with_processes_give_the_uncached_scores_to_the_last_bit(make_search, tmp_path, wine):
    X, y = wine
    estimator = ESPROClassifier(tiny_template(), **SETTINGS)
    uncached = make_search(estimator, cv=2, n_jobs=2, scoring="neg_log_loss").fit(X, y)
    cached = make_search(estimator.set_params(memory=str(tmp_path)), cv=2, n_jobs=2, scoring="neg_log_loss")
    cold = search_scores(cached.fit(X, y))
    warm = search_scores(cached.fit(X, y))
    reference = search_scores(uncached)
    for scores, best in (cold, warm):
        assert best == reference[1]
        assert scores.keys() == reference[0].keys()
        for key in scores:
            np.testing.assert_array_equal(scores[key], reference[0][key], err_msg=key)
    n_nets = sum(name.startswith("net-") for name in entries(tmp_path))
    # one net per fold and member (and per refit), not per candidate
    assert n_nets <= 2 * (2 + 1) * (3 if "Halving" in type(cached).__name__ else 1)


def test_sample_and_class_weights_are_part_of_the_key(tmp_path, wine, trainings):
    """Members and vertices trained on other row or class weights are other entries."""
    X, y = wine
    w = np.linspace(0.5, 2.0, len(y))
    one_changed = w.copy()
    one_changed[7] = np.nextafter(np.float32(w[7]), np.float32(10.0))  # weights train as float32

    settings = dict(n_members=1, n_vertices=1, vertex_epochs=1, random_state=0, vertex_weight_decay="auto")

    def fit(**params):
        sample_weight = params.pop("sample_weight", None)
        model = ESPROClassifier(tiny_template(), memory=tmp_path, **settings, **params)
        return model.fit(X, y, sample_weight=sample_weight)

    fit(sample_weight=w)
    for change in ({"sample_weight": one_changed}, {}, {"sample_weight": w, "class_weight": "balanced"}):
        before = len(entries(tmp_path))
        trainings.clear()
        fitted = fit(**change)
        assert trainings["vertices"] == 1 and len(entries(tmp_path)) == before + 2, change
        uncached = {k: v for k, v in change.items() if k != "sample_weight"}
        reference = ESPROClassifier(tiny_template(), **settings)
        reference.set_params(**uncached).fit(X, y, sample_weight=change.get("sample_weight"))
        np.testing.assert_array_equal(fitted.predict_proba(X), reference.predict_proba(X))
    trainings.clear()
    fit(sample_weight=w)  # the first fit's entries again
    assert trainings["vertices"] == 0
