"""Parallel members, device placement, checkpoints per member, a real Dask cluster."""

import pickle

import numpy as np
import pytest
import torch
from joblib import parallel_config
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Checkpoint

from skspro import DeepEnsembleClassifier, ESPROClassifier, SPROConnector, default_estimator
from skspro._devices import resolve_devices


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def small_template(**params):
    return default_estimator().set_params(max_epochs=5, module__hidden_units=(16,), **params)


def fake_gpus(monkeypatch, count):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize(
    "device, n_gpus, n_jobs, expected",
    [
        (None, 0, 1, [None, None, None]),
        ("cpu", 2, 2, ["cpu", "cpu", "cpu"]),
        ("auto", 0, 1, ["cpu", "cpu", "cpu"]),
        ("auto", 1, 1, ["cuda", "cuda", "cuda"]),
        ("cuda", 1, 2, ["cuda", "cuda", "cuda"]),
        ("cuda", 2, 1, ["cuda", "cuda", "cuda"]),
        ("cuda", 2, 3, ["cuda:0", "cuda:1", "cuda:0"]),
        ("auto", 3, 2, ["cuda:0", "cuda:1", "cuda:2"]),
        ("cuda:1", 2, 2, ["cuda:1", "cuda:1", "cuda:1"]),
    ],
)
def test_device_placement(monkeypatch, device, n_gpus, n_jobs, expected):
    fake_gpus(monkeypatch, n_gpus)
    assert resolve_devices(device, n_jobs, 3) == expected


def test_device_errors_say_what_to_do(monkeypatch, wine):
    fake_gpus(monkeypatch, 0)
    with pytest.raises(ValueError, match="asks for a GPU.*Use device='auto' or 'cpu'"):
        resolve_devices("cuda", 1, 2)
    fake_gpus(monkeypatch, 2)
    with pytest.raises(ValueError, match="has 2 GPU"):
        resolve_devices("cuda:5", 1, 2)
    with pytest.raises(ValueError, match="device must be"):
        resolve_devices("gpu", 1, 2)
    monkeypatch.undo()
    X, y = wine
    with pytest.raises(ValueError, match="device must be"):
        DeepEnsembleClassifier(small_template(), n_members=1, device="tpu").fit(X, y)


def test_a_template_on_a_gpu_the_machine_lacks_is_refused_before_training(monkeypatch, wine):
    X, y = wine
    fake_gpus(monkeypatch, 0)
    template = small_template().set_params(device="cuda")
    for model in (DeepEnsembleClassifier(template, n_members=1), ESPROClassifier(template, n_members=1)):
        with pytest.raises(ValueError, match="template's device='cuda' asks for a GPU"):
            model.fit(X, y)
        assert not hasattr(model, "estimators_")
    # The estimator's own device replaces the template's: no error.
    fitted = DeepEnsembleClassifier(template, n_members=1, device="cpu", random_state=0).fit(X, y)
    assert fitted.estimators_[0].device == "cpu"


def test_device_setting_reaches_the_members(wine):
    X, y = wine
    model = DeepEnsembleClassifier(small_template(), n_members=2, device="auto", random_state=0).fit(X, y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert all(net.device == expected for net in model.estimators_)


def test_stored_tensors_live_on_the_cpu_so_gpu_fits_load_anywhere(wine):
    X, y = wine
    model = ESPROClassifier(small_template(), n_members=1, n_vertices=1, vertex_epochs=1, n_samples=2).fit(
        X, y
    )
    member = model._members[0]
    assert all(p.device.type == "cpu" for p in member.simplex.params.values())
    assert member.sample_weights.device.type == "cpu"
    # The fitted networks pickle as their recipe (module, vertices, weights,
    # buffers on the CPU); what is derived is rebuilt on loading.
    state = model.networks_.__getstate__()
    assert set(state) == {"module", "groups", "nonlinearity", "device"}
    assert all(p.device.type == "cpu" for p in state["module"].parameters())
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


def test_checkpoints_of_parallel_members_do_not_collide(tmp_path, wine):
    X, y = wine
    template = small_template(
        callbacks=[Checkpoint(dirname=str(tmp_path / "ckpt"), monitor="train_loss_best")]
    )
    DeepEnsembleClassifier(template, n_members=2, n_jobs=2, random_state=0).fit(X, y)
    folders = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert folders == ["member_0", "member_1"]
    for folder in folders:
        assert (tmp_path / "ckpt" / folder / "params.pt").exists()
    # The template's own callback is untouched.
    assert template.callbacks[0].dirname == str(tmp_path / "ckpt")


@pytest.mark.parametrize("estimator_class", [DeepEnsembleClassifier, ESPROClassifier, SPROConnector])
def test_n_jobs_does_not_change_predictions(estimator_class, wine):
    X, y = wine
    if estimator_class is SPROConnector:
        params = dict(n_modes=2, n_connectors=1, connector_epochs=1, n_samples=2)
    elif estimator_class is ESPROClassifier:
        params = dict(n_members=2, n_vertices=1, vertex_epochs=1, n_samples=2)
    else:
        params = dict(n_members=2)
    one = estimator_class(small_template(), random_state=3, n_jobs=1, **params).fit(X, y)
    two = estimator_class(small_template(), random_state=3, n_jobs=2, **params).fit(X, y)
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is an optional extra: pip install 'skspro[dask]'"
    )
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_espro_and_grid_search_on_a_dask_cluster(dask_client, wine):
    from distributed import get_task_stream

    X, y = wine
    params = dict(n_members=2, n_vertices=1, vertex_epochs=1, n_samples=2, random_state=0)
    local = ESPROClassifier(small_template(), **params).fit(X, y)
    with get_task_stream(dask_client) as stream, parallel_config(backend="dask"):
        on_cluster = ESPROClassifier(small_template(), **params).fit(X, y)
        grid = GridSearchCV(
            ESPROClassifier(small_template(), **params),
            {"n_vertices": [0, 1], "estimator__lr": [1e-3, 1e-2]},
            cv=2,
            scoring="neg_log_loss",
        ).fit(X, y)
    # The members were trained by the cluster's worker processes ...
    keys = [task["key"] for task in stream.data]
    assert any("fit_member" in str(key) for key in keys), keys[:5]
    # ... with the same result as here.
    np.testing.assert_array_equal(on_cluster.predict_proba(X), local.predict_proba(X))
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()


def test_grid_search_with_memory_on_a_dask_cluster_gives_the_uncached_scores(dask_client, wine, tmp_path):
    """Workers share one cache directory: each member is stored once per fold, and the
    cached search (cold and warm) scores every candidate as the uncached one, to the last bit."""
    X, y = wine
    # "auto": the count of stored members below leaves out the holdout probe's (tests/test_holdout_decay.py)
    params = dict(
        n_members=2, n_vertices=1, vertex_epochs=1, n_samples=2, random_state=0, vertex_weight_decay="auto"
    )
    grid = {"vertex_lr": [1e-3, 1e-2], "n_vertices": [1, 2]}

    def search(**memory):
        model = ESPROClassifier(small_template(), **params, **memory)
        with parallel_config(backend="dask"):
            return GridSearchCV(model, grid, cv=2, scoring="neg_log_loss").fit(X, y)

    uncached = search()
    for _ in ("cold", "warm"):
        cached = search(memory=str(tmp_path))
        assert cached.best_params_ == uncached.best_params_
        for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
            np.testing.assert_array_equal(cached.cv_results_[key], uncached.cv_results_[key])
    nets = list((tmp_path / "joblib" / "skspro-members").glob("net-*.pt"))
    assert len(nets) == 2 * (2 + 1)  # members x (folds + the refit), not x candidates


def test_thread_backend_gives_the_same_members_and_keeps_the_callers_rng(wine):
    X, y = wine
    template = small_template(module__dropout=0.3, batch_size=8)
    reference = DeepEnsembleClassifier(template, n_members=3, random_state=1).fit(X, y).predict_proba(X)
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    with parallel_config(backend="threading"):
        threaded = DeepEnsembleClassifier(template, n_members=3, n_jobs=3, random_state=1).fit(X, y)
    assert torch.equal(torch.random.get_rng_state(), before)
    np.testing.assert_array_equal(threaded.predict_proba(X), reference)


def test_sampled_network_cache_is_larger_on_gpus_within_bounds(monkeypatch):
    from types import SimpleNamespace

    from skspro.simplex import networks as _members

    assert _members.sample_cache_bytes(torch.device("cpu")) == _members.SAMPLE_CACHE_BYTES
    for total, expected in (
        (2 * 2**30, _members.SAMPLE_CACHE_BYTES),
        (32 * 2**30, 2 * 2**30),
        (2**40, 4 * 2**30),
    ):
        monkeypatch.setattr(
            torch.cuda, "get_device_properties", lambda device, t=total: SimpleNamespace(total_memory=t)
        )
        assert _members.sample_cache_bytes(torch.device("cuda:0")) == expected


def test_a_lost_dask_worker_fails_a_search_as_it_fails_sklearns_own_and_a_rerun_gives_the_same_scores(
    dask_client, wine
):
    """Killing a worker mid-search either leaves the search to finish, or fails it
    with dask's cancellation error: joblib's Dask backend scatters every argument
    over 1 KB (the data, the CV indices) to a single worker, and they are lost
    with it (scikit-learn's MLPClassifier fails the same way on this setup; see
    docs/scaling.rst). A rerun gives exactly the undisturbed search's scores."""
    import os
    import threading
    import time

    X, y = wine

    def search():
        template = small_template().set_params(max_epochs=10)
        model = ESPROClassifier(template, n_members=2, n_vertices=1, vertex_epochs=1)
        grid = GridSearchCV(model.set_params(random_state=0), {"estimator__lr": [1e-3, 1e-2, 3e-2]}, cv=2)
        with parallel_config(backend="dask"):
            return grid.fit(X, y).cv_results_["mean_test_score"]

    reference = search()
    victim = next(iter(dask_client.scheduler_info()["workers"]))
    killed = []

    def kill():
        time.sleep(0.3)
        killed.append(time.perf_counter())
        try:
            dask_client.run(os._exit, 1, workers=[victim])
        except Exception:  # the connection to the dying worker closes: expected
            pass

    threading.Thread(target=kill, daemon=True).start()
    try:
        disturbed = search()
    except Exception as error:
        assert type(error).__name__ in {"FutureCancelledError", "CancelledError", "KilledWorker"}, error
        disturbed = None
    finished = time.perf_counter()
    assert killed and killed[0] < finished  # the worker was lost while the search ran
    if disturbed is not None:  # dask rescheduled the lost work
        np.testing.assert_array_equal(disturbed, reference)
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker
    np.testing.assert_array_equal(search(), reference)
