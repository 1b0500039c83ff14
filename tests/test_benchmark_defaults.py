"""benchmarks/defaults.py end to end (--quick), its target checks, and the recipe study's summary."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the script puts benchmarks/ on sys.path for its helpers
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("defaults")
    script = load_script("defaults")
    assert script.main(["--quick", "--threads", "1", "--results-dir", str(directory)]) == 0
    return script, directory


@pytest.mark.slow
def test_quick_run_writes_every_method_and_the_targets(quick_run):
    script, directory = quick_run
    stored = json.loads((directory / "defaults-quick.json").read_text())
    assert {"command", "commit", "torch", "skspro", "device", "wall_s"} <= set(stored["environment"])
    rows = pd.DataFrame(stored["rows"])
    methods = set(rows.method)
    assert {"DE default", "ESPRO default", "snapshot", "FGE", "DE-1"} <= methods
    assert (rows.method == "DE default").sum() == 1 and rows.dataset.unique().tolist() == ["digits_mlp"]
    de5 = rows[rows.method == "DE-5"].iloc[0]
    de = rows[rows.method == "DE default"].iloc[0]
    assert de.ts_test_nll == de5.ts_test_nll  # the default deep ensemble is the 5-member prefix
    snapshot = rows[rows.method == "snapshot"].iloc[0]
    assert snapshot.epochs == de.epochs and snapshot.n_networks == 5  # equal epochs, one net per cycle
    espro = rows[rows.method == "ESPRO default"].iloc[0]
    assert espro.sampled_over_members > 0 and espro.cost_s > 0
    # the default's probe chose one of its two decays (an MLP: it is probed); the earlier default beside it
    assert espro.holdout_choice in ("0.0", "auto") and "ESPRO auto" in methods
    assert any(c.startswith("ts_noise/") for c in rows.columns)
    assert any(c.startswith("gaussian_noise/") for c in rows.columns)  # corruptions on the image task
    markdown = (directory / "defaults-quick.md").read_text()
    for target in ("T1", "T2", "T3", "T4", "T5"):
        assert f" {target}" in markdown
    # --render rebuilds the same Markdown from the JSON
    (directory / "defaults-quick.md").unlink()
    assert script.main(["--quick", "--render", "--results-dir", str(directory)]) == 0
    assert (directory / "defaults-quick.md").read_text() == markdown


def crafted(rows: pd.DataFrame, espro_factor: float, ratio: float) -> pd.DataFrame:
    """The quick run's rows copied to 3 data sets x 5 seeds, ESPRO's NLL a multiple of the deep ensemble's."""
    frames = []
    for dataset in ("a", "b", "c"):
        for seed in range(5):
            frame = rows.copy()
            frame["dataset"], frame["seed"] = dataset, seed
            de = frame[frame.method == "DE default"].iloc[0]
            espro = frame.method == "ESPRO default"
            factor = espro_factor * (1 + 0.01 * seed)  # paired noise: not the same on every seed
            for column in ("test_nll", "ts_test_nll"):
                frame.loc[espro, column] = de[column] * factor
            frame.loc[espro, "sampled_over_members"] = ratio
            frame.loc[espro, "cost_s"] = 2 * frame[frame.method == "DE-1"].cost_s.iloc[0]  # buys ~2 members
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.slow
def test_target_lines_follow_the_numbers(quick_run):
    script, directory = quick_run
    stored = json.loads((directory / "defaults-quick.json").read_text())
    config = {"datasets": {"a": {}, "b": {}, "c": {}}}
    report = sys.modules["_defaults_report"]
    rows = pd.DataFrame(stored["rows"])

    def lines(factor, ratio):
        df = crafted(rows, factor, ratio)
        found = (re.search(r"\*\* T(\d): ", line) for line in report.targets(config, df, report.dee_rows(df)))
        return {m.group(1): m.string for m in found if m}

    good, bad = lines(0.9, 1.0), lines(3.0, 1.05)
    assert good["1"].startswith("- **PASS**") and "Worse on: none" in good["1"]
    assert bad["1"].startswith("- **FAIL**") and "a raw" in bad["1"]
    assert good["2"].startswith("- **PASS**") and bad["2"].startswith("- **FAIL**")
    # at two members' cost: 0.9 x DE-5's TS NLL beats DE-5 (DEE >= 5); 3 x is worse than one member
    assert good["4"].startswith("- **PASS**") and "3 of 3" in good["4"]
    assert bad["4"].startswith("- **FAIL**") and "0 of 3" in bad["4"]


def test_recipe_study_summary_is_paired_against_the_deep_ensemble():
    recipe = load_script("recipe")
    rows = []
    for seed, (de, cand) in enumerate([(1.0, 0.9), (2.0, 2.2)]):
        base = {"dataset": "d", "seed": seed, "test_error": 0.1}
        rows.append({**base, "method": "DE default", "epochs": 200, **dict.fromkeys(recipe.METRICS, de)})
        scored = dict.fromkeys(recipe.METRICS, cand)
        rows.append({**base, "method": "c", "epochs": 180, "sampled_over_members": 1.0 + seed, **scored})
    per, overall = recipe.summary(rows)
    (entry,) = per.to_dict("records")
    assert entry["val_nll d%"] == pytest.approx(100 * ((0.9 - 1.0) + (2.2 - 2.0)) / 2 / 1.5)
    assert entry["val_nll wins"] == "1/2" and entry["epochs / DE"] == pytest.approx(0.9)
    assert overall.loc[0, "worst sampled / members"] == pytest.approx(1.5)  # seeds averaged, worst data set


def test_recipe_study_chooses_only_among_candidates_meeting_the_targets_on_validation():
    recipe = load_script("recipe")
    rows = []
    for seed in range(2):
        base = {"dataset": "d", "seed": seed, "test_error": 0.1, "epochs": 200}
        rows.append({**base, "method": "DE default", **dict.fromkeys(recipe.METRICS, 1.0)})
        # "sharp": lowest TS NLL, but its raw validation NLL is 3 % worse than the deep ensemble's
        sharp = {"val_nll": 1.03, "val_ts_nll": 0.95, "test_nll": 1.0, "test_ts_nll": 1.0}
        # "drifting": sampled networks 5 % worse than their members on validation
        drifting = {"val_nll": 0.97, "val_ts_nll": 0.96, "test_nll": 1.0, "test_ts_nll": 1.0}
        safe = safe_scores = {"val_nll": 0.99, "val_ts_nll": 0.99, "test_nll": 1.0, "test_ts_nll": 1.0}
        for method, scored, val_ratio in [
            ("sharp", sharp, 1.0),
            ("drifting", drifting, 1.05),
            ("safe", safe, 1.0),
        ]:
            extra = {"sampled_over_members": 1.0, "val_sampled_over_members": val_ratio}
            rows.append({**base, "method": method, **scored, **extra})
    config = {"seeds": [0, 1], "datasets": {"d": {}}}
    markdown = recipe.render(config, {}, rows, {})
    assert "Chosen: `safe`" in markdown
    rows = [row for row in rows if row["method"] != "safe"]
    assert "Chosen: `None`" in recipe.render(config, {}, rows, {})
    # only the TS target, or only the epochs, fails: not eligible either
    for method, change in [("ts", {"val_ts_nll": 1.02}), ("long", {"epochs": 220})]:
        candidate = [
            {**row, **safe_scores, "method": method, **change} for row in rows if row["method"] == "sharp"
        ]
        kept = [row for row in rows if row["method"] == "DE default"] + candidate
        assert "Chosen: `None`" in recipe.render(config, {}, kept, {}), method
        fixed = [{**row, "method": method} for row in candidate]
        for row in fixed:
            row.update(safe_scores, epochs=200)
        assert f"Chosen: `{method}`" in recipe.render(config, {}, kept[:2] + fixed, {}), method


def test_recipe_study_scores_shifted_validation_copies_with_the_clean_temperature():
    import numpy as np

    recipe = load_script("recipe")
    y = np.array([0, 1, 0, 1])
    val = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])  # right on every row: t < 1 sharpens it
    test = np.array([[0.4, 0.6], [0.3, 0.7], [0.8, 0.2], [0.6, 0.4]])
    sharp = np.array([[0.99, 0.01], [0.02, 0.98], [0.3, 0.7], [0.45, 0.55]])
    flat = np.full((4, 2), 0.5)
    sets = {"val": val, "test": test, "shift/a": sharp, "shift/b": flat}
    scored = recipe.score_networks({key: p[None] for key, p in sets.items()}, y, y)
    nll = lambda p: float(-np.log(p[np.arange(4), y]).mean())  # noqa: E731
    assert scored["val_shift_nll"] == pytest.approx((nll(sharp) + nll(flat)) / 2)
    assert scored["val_shift_error"] == pytest.approx((0.25 + 0.5) / 2)  # flat ties go to class 0
    t = recipe.temperature(np.log(val), y)
    assert t != pytest.approx(recipe.temperature(np.log(sharp), y))  # the test tells them apart
    expected = (nll(recipe.scaled(sharp, t)) + nll(recipe.scaled(flat, t))) / 2
    assert scored["val_shift_ts_nll"] == pytest.approx(expected)
    assert scored["val_shift_ts_nll"] != pytest.approx(scored["val_shift_nll"])
    assert "val_shift_nll" not in recipe.score_networks({k: sets[k][None] for k in ("val", "test")}, y, y)


def test_recipe_study_reports_a_searched_candidate_by_its_time_and_never_chooses_it():
    """A ``cv_grid`` candidate trains more than its refit model holds: its epochs are unknown
    (NaN), its cost is its fit time over the deep ensemble's, and it is not eligible however
    good its scores."""
    recipe = load_script("recipe")
    rows = []
    for seed, (de_s, search_s) in enumerate([(2.0, 7.0), (4.0, 15.0)]):
        base = {"dataset": "d", "seed": seed, "test_error": 0.1}
        de = {"method": "DE default", "epochs": 200, "fit_s": de_s, "members_train_nll": 0.01 * (seed + 1)}
        rows.append({**base, **de, "members_val_over_train": 5.0, **dict.fromkeys(recipe.METRICS, 1.0)})
        good = {"sampled_over_members": 0.9, "val_sampled_over_members": 0.9}
        rows.append(
            {
                **base,
                "method": "cv",
                "epochs": np.nan,
                "scratch_fit_s": search_s,
                "cv_choice": '{"vertex_weight_decay": "auto"}' if seed else '{"vertex_weight_decay": 0.0}',
                **good,
                **dict.fromkeys(recipe.METRICS, 0.8),
            }
        )
    per, overall = recipe.summary(rows)
    (entry,) = per.to_dict("records")
    assert entry[recipe.SEARCH_TIME] == pytest.approx(11.0 / 3.0)  # mean search time / mean DE fit time
    assert entry["DE members train NLL"] == pytest.approx(0.015)
    assert entry["DE members val / train NLL"] == pytest.approx(5.0)
    assert overall.loc[0, recipe.SEARCH_TIME] == pytest.approx(11.0 / 3.0)
    assert entry["cv choice (seeds)"] in ("0.0 (1); auto (1)", "auto (1); 0.0 (1)")
    assert "Chosen: `None`" in recipe.render({"seeds": [0, 1], "datasets": {"d": {}}}, {}, rows, {})


def test_recipe_study_searched_candidate_is_the_refit_of_the_best_cross_validated_setting(
    tmp_path, monkeypatch
):
    """The search scores by NLL (a decay that wipes out the vertex loses), trains each fold's
    members once for both values (3 folds + the refit: 4 member fits, not 7), uses a cache of
    its own (the study's shared one stays untouched, so its time is a user's from scratch),
    and returns the refit on every row."""
    from sklearn.datasets import load_iris

    from skspro import ESPROClassifier, _memory, default_estimator

    recipe = load_script("recipe")
    X, y = load_iris(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    net = default_estimator().set_params(max_epochs=30, module__hidden_units=(16,))
    stored = []
    original = _memory.MemberCache.store_net
    monkeypatch.setattr(
        _memory.MemberCache, "store_net", lambda self, *a, **k: (stored.append(1), original(self, *a, **k))
    )
    # 900 x lr 1e-3: each step keeps a tenth of the vertex, so the sampled networks shrink to nothing
    grid = {"vertex_weight_decay": [900.0, 0.0]}
    params = {"n_members": 1, "n_vertices": 1, "vertex_epochs": 2, "cv_grid": grid}
    shared = tmp_path / "shared"
    shared.mkdir()
    model, recorded = recipe.fit_candidate(net, params, 0, str(shared), X, y)
    assert model.vertex_weight_decay == 0.0 and json.loads(recorded["cv_choice"]) == {
        "vertex_weight_decay": 0.0
    }
    assert len(stored) == recipe.CV_FOLDS + 1
    assert not any(shared.iterdir())
    # the refit saw every row: the same as fitting the chosen setting on all of X
    same = ESPROClassifier(
        net, random_state=0, n_members=1, n_vertices=1, vertex_epochs=2, vertex_weight_decay=0.0
    )
    np.testing.assert_array_equal(model.predict_proba(X), same.fit(X, y).predict_proba(X))
