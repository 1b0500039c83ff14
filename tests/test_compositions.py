"""Whole compositions (Pipelines, meta-estimators) saved and loaded without pickle."""

import json
import os
import zipfile

import numpy as np
import pytest
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_iris
from sklearn.ensemble import VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator, load, save
from skspro._composition import skspro_estimators


@pytest.fixture(scope="module")
def data():
    X, y = load_iris(return_X_y=True)
    return X, y


def _template():
    return default_estimator().set_params(max_epochs=3, module__hidden_units=(16,))


def _espro(**params):
    settings = dict(n_members=1, n_vertices=1, vertex_epochs=1, n_samples=2, random_state=0)
    settings.update(params)
    return ESPROClassifier(_template(), **settings)


def _same(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_a_fitted_pipeline_round_trips_in_one_line_each_way(data, tmp_path):
    X, y = data
    pipeline = make_pipeline(StandardScaler(), FunctionTransformer(np.tanh), _espro()).fit(X, y)
    save(pipeline, tmp_path / "pipeline.skspro")
    restored = load(tmp_path / "pipeline.skspro", _espro())
    assert [name for name, _ in restored.steps] == [name for name, _ in pipeline.steps]
    _same(restored, pipeline, X)
    assert restored[-1] is not pipeline[-1]
    # the default template needs no estimator at all
    default = make_pipeline(StandardScaler(), ESPROClassifier(n_members=1, n_vertices=1, vertex_epochs=1))
    save(default.fit(X, y), tmp_path / "default.skspro")
    _same(load(tmp_path / "default.skspro"), default, X)


def test_meta_estimators_with_skspro_steps_round_trip(data, tmp_path):
    X, y = data
    voting = VotingClassifier(
        [("de", DeepEnsembleClassifier(_template(), n_members=2, random_state=0)), ("espro", _espro())],
        voting="soft",
    ).fit(X, y)
    calibrated = CalibratedClassifierCV(FrozenEstimator(_espro().fit(X, y)), method="temperature").fit(X, y)
    cross_fitted = CalibratedClassifierCV(_espro(), method="temperature", cv=2).fit(X, y)
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), _espro()), {"esproclassifier__n_samples": [1, 2]}, cv=2
    )
    grid.fit(X, y)
    # a fitted search also holds its scorer and splitter, which skops trusts only when told
    searched = [
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.model_selection._split.StratifiedKFold",
    ]
    for i, model in enumerate([voting, calibrated, cross_fitted, grid.best_estimator_, grid]):
        save(model, tmp_path / f"{i}.skspro")
        restored = load(tmp_path / f"{i}.skspro", _espro(), trusted=searched if model is grid else None)
        assert type(restored) is type(model)
        _same(restored, model, X)
    with pytest.raises(ValueError, match="_PassthroughScorer"):
        load(tmp_path / "4.skspro", _espro())
    # the unfitted prototypes (a search's estimator, a voting ensemble's estimators) come back unfitted
    restored = load(tmp_path / "4.skspro", _espro(), trusted=searched)
    assert not hasattr(restored.estimator[-1], "networks_") and restored.estimator[-1].n_samples == 2
    assert len(skspro_estimators(restored)) == len(skspro_estimators(grid))


def test_untrusted_types_are_refused_and_named_until_trusted(data, tmp_path):
    X, y = data
    pipeline = make_pipeline(FunctionTransformer(_scale_by_two), _espro()).fit(X, y)
    save(pipeline, tmp_path / "custom.skspro")
    with pytest.raises(ValueError, match=r"not trusted: \['.*_scale_by_two'\]\. Nothing was loaded"):
        load(tmp_path / "custom.skspro", _espro())
    restored = load(tmp_path / "custom.skspro", _espro(), trusted=[f"{__name__}._scale_by_two"])
    _same(restored, pipeline, X)


def _scale_by_two(X):
    return 2 * X


def _rewrite(path, out, **records):
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents.update(records)
    with zipfile.ZipFile(out, "w") as archive:
        for name, blob in contents.items():
            if blob is not None:
                archive.writestr(name, blob)


def test_a_crafted_composition_runs_nothing(data, tmp_path):
    X, y = data
    pipeline = make_pipeline(StandardScaler(), _espro()).fit(X, y)
    save(pipeline, tmp_path / "good.skspro")
    # a composition record whose transformer would call os.system
    evil = skops.io.dumps(make_pipeline(FunctionTransformer(os.system, kw_args={})))
    _rewrite(tmp_path / "good.skspro", tmp_path / "evil.skspro", **{"composition.skops": evil})
    with pytest.raises(ValueError, match=r"not trusted: \['(posix|nt)\.system'\]"):
        load(tmp_path / "evil.skspro", _espro())
    # a header naming a class that is not skspro's, a missing model record, a newer format
    with zipfile.ZipFile(tmp_path / "good.skspro") as archive:
        header = json.loads(archive.read("composition.json"))
    cases = {
        "foreign": ({**header, "models": [{**header["models"][0], "estimator": "os.system"}]}, {}),
        "missing": (header, {"model_0.skspro": None}),
        "newer": ({**header, "format_version": 99}, {}),
    }
    messages = {"foreign": "not a skspro estimator's record", "missing": "missing", "newer": "Upgrade skspro"}
    for name, (changed, records) in cases.items():
        records = {"composition.json": json.dumps(changed).encode(), **records}
        _rewrite(tmp_path / "good.skspro", tmp_path / f"{name}.skspro", **records)
        with pytest.raises(ValueError, match=messages[name]):
            load(tmp_path / f"{name}.skspro", _espro())


def test_what_cannot_be_saved_says_why(data, tmp_path):
    X, y = data
    with pytest.raises(
        ValueError, match="StandardScaler holds none. For other scikit-learn objects use skops"
    ):
        save(StandardScaler().fit(X), tmp_path / "x")
    with pytest.raises(ValueError, match="this ESPROClassifier is not fitted"):
        save(_espro(), tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="A list of estimators is for composition files"):
        save(_espro().fit(X, y), tmp_path / "single")
        load(tmp_path / "single", [_espro()])


def test_a_template_that_does_not_fit_the_file_names_the_setting(data, tmp_path):
    X, y = data
    save(_espro().fit(X, y), tmp_path / "model")
    other = ESPROClassifier(_template().set_params(module__hidden_units=(32, 32)))
    with pytest.raises(ValueError, match=r"module__hidden_units=\[16\]; .* module__hidden_units=\[32, 32\]"):
        load(tmp_path / "model", other)
    with pytest.raises(ValueError, match=r"module__dropout not set .* module__dropout=0\.5"):
        load(tmp_path / "model", ESPROClassifier(_template().set_params(module__dropout=0.5)))


def test_routing_requests_survive_a_round_trip(data, tmp_path):
    import sklearn

    X, y = data
    w = np.linspace(0.5, 1.5, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        scaler = StandardScaler().set_fit_request(sample_weight=False)
        model = _espro().set_fit_request(sample_weight=True).set_score_request(sample_weight="weights")
        pipeline = make_pipeline(scaler, model).fit(X, y, sample_weight=w)
        save(pipeline, tmp_path / "routed.skspro")
        restored = load(tmp_path / "routed.skspro", _espro())
        _same(restored, pipeline, X)
        for got, expected in zip(restored, pipeline):
            assert got._metadata_request._serialize() == expected._metadata_request._serialize()
        refit = restored.fit(X, y, sample_weight=w)  # the requests still route
        _same(refit, pipeline, X)


def test_review_cases_of_load(data, tmp_path):
    """Saved None parameters, sizes that disagree with the header, missing files,
    errors inside a composition, list lengths, a broken format number."""
    X, y = data
    model = _espro().fit(X, y)
    save(model, tmp_path / "model")
    restored = load(tmp_path / "model", _espro(vertex_lr=0.5, class_weight="balanced", n_jobs=4))
    assert restored.vertex_lr is None and restored.class_weight is None and restored.n_jobs is None
    import torch

    payload = torch.load(tmp_path / "model", weights_only=True)
    meta = json.loads(payload["meta"])
    meta["params"]["n_members"] = 5
    torch.save({**payload, "meta": json.dumps(meta)}, tmp_path / "edited")
    with pytest.raises(ValueError, match="header says n_members=5, n_vertices=1, but it stores 1 members"):
        load(tmp_path / "edited", _espro())
    with pytest.raises(FileNotFoundError, match="No such file"):
        load(tmp_path / "missing.skspro")
    with pytest.raises(IsADirectoryError):
        load(tmp_path)
    pipeline = make_pipeline(StandardScaler(), _espro()).fit(X, y)
    save(pipeline, tmp_path / "pipeline.skspro")
    other = ESPROClassifier(_template().set_params(module__hidden_units=(32,)))
    with pytest.raises(ValueError, match=r"pipeline.skspro' \(skspro estimator 0, a ESPROClassifier\)"):
        load(tmp_path / "pipeline.skspro", other)
    with pytest.raises(
        ValueError, match=r"list of 2 estimators for a file of 1 .*0: ESPROClassifier \(fitted\)"
    ):
        load(tmp_path / "pipeline.skspro", [_espro(), _espro()])
    with zipfile.ZipFile(tmp_path / "pipeline.skspro") as archive:
        header = json.loads(archive.read("composition.json"))
    _rewrite(
        tmp_path / "pipeline.skspro",
        tmp_path / "broken.skspro",
        **{"composition.json": json.dumps({**header, "format_version": "x"}).encode()},
    )
    with pytest.raises(ValueError, match="format_version 'x' is not a format number"):
        load(tmp_path / "broken.skspro")


def test_saved_none_parameters_come_back_in_compositions_too(data, tmp_path):
    X, y = data
    cross_fitted = CalibratedClassifierCV(_espro(), method="temperature", cv=2).fit(X, y)
    save(cross_fitted, tmp_path / "calibrated.skspro")
    restored = load(tmp_path / "calibrated.skspro", _espro(vertex_lr=0.5, n_jobs=3))
    assert [m.vertex_lr for m in skspro_estimators(restored)] == [None] * len(skspro_estimators(restored))
    assert restored.estimator.n_jobs is None  # the unfitted prototype as well
    _same(restored, cross_fitted, X)
