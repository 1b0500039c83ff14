"""Which simplex recipe should ``ESPROClassifier()`` default to? (issue 11)

A study on the suite of ``benchmarks/configs/defaults.json``: per data set and
seed (the same splits as ``benchmarks/defaults.py``), the default deep
ensemble and ESPRO with each candidate recipe of ``benchmarks/configs/recipe.json``
are fitted on the training part. Every candidate is scored on the
**validation split only** (raw NLL, and NLL after temperature scaling
fitted on the validation split itself: one parameter, the same for every
method; halves of a validation split of under 100 rows gave temperatures at
their bounds); the test split is reported beside it for the record but plays
no part in the choice. Members are trained once
per seed and shared by the candidates that keep the template
(``memory=``, issue 17): the candidates differ only in what is grown on them.

The summary, per candidate: the worst and the mean, over data sets, of the
paired mean difference of its validation NLL against the default deep
ensemble's (in % of the deep ensemble's), raw and temperature-scaled, with
its epochs against the deep ensemble's, and the worst ratio of its sampled
networks' test NLL to its members'.

Every candidate of ``configs/recipe.json`` is ``base`` (the recipe before the
study: 3 members x 2 vertices, no vertex weight decay) plus its own settings;
each results file lists its candidates verbatim. The runs behind the default
(issue 11), 3 seeds each:

* ``results/recipe-mlp.md``: the five MLP tasks; vertex learning rate, ``reg``,
  AdamW on the vertex, 4 members x 1 vertex, shorter members;
* ``results/recipe-mlp2.md``: the five MLP tasks; combinations of the
  winners;
* ``results/recipe-cnn.md``: the three CNNs; the MLP winners, with the
  estimator's own ``vertex_weight_decay``;
* ``results/recipe-mlp3.md``, ``recipe-mlp4.md``, ``recipe-mlp5.md``: the
  five MLP tasks; the decay per epoch (``vertex_decay_per_epoch``, a
  study-only setting: ``vertex_weight_decay="auto"`` with another share per
  epoch, :func:`auto_decay_per_epoch`) at 2-5 %, with the sampled networks
  over their members on the validation split;
* ``results/recipe-tiny.md`` (5 seeds): five small tabular sets (wine, iris,
  300 rows of breast cancer, a 300-row ``make_classification``, breast
  cancer); the decay per epoch at 0-3 %, ``early_stopping=True``, and the
  decay chosen by a 3-fold ``GridSearchCV`` (``cv_grid``, members trained
  once per fold through ``memory=``, in a cache of its own; its cost in
  time, ``fit time / DE fit``), a deep ensemble of 20 members at about the
  search's time (``deep_ensemble_members``), with the members' training NLL
  and held-out over training NLL;
* ``results/recipe-cv.md``: the same search and the 20-member deep ensemble
  on three larger MLP tasks;
* ``results/recipe-holdout.md`` (5 seeds): ``vertex_weight_decay="holdout"``
  (a probe member on half the rows chooses the decay; fitted without the
  shared cache, its time reported like a search's) beside a six-member
  deep ensemble of about its time, on nine MLP tasks.

4 members x 1 vertex won on every family; vertex weight decay won on every
MLP task and lost on every CNN, hence ``vertex_weight_decay="auto"``
(:func:`skspro._training.resolve_vertex_weight_decay`), 3 % per epoch. The
small data sets of ``recipe-tiny.md``, where it lost, and
``recipe-holdout.md`` made ``"holdout"`` the default decay (chosen on held-out
rows between none and ``"auto"``; ``benchmarks/results/defaults.md``).

The choice: among the candidates within the deep ensemble's epochs that meet
issue 11's targets on the validation split (``MAX_WORSE_PERCENT``,
``MAX_SAMPLED_OVER_MEMBERS``), the lowest worst-case validation TS
difference (rounds 1-3 ran before the targets were part of the rule).

Usage::

    python benchmarks/recipe.py                     # every candidate, every data set
    python benchmarks/recipe.py --seeds 3 --datasets digits_cnn,digits_cnn_dropout,mnist1d_cnn1d \
        --candidates default,wd1,4x1,4x1-wd1,4x1-reg1e-2-wd1,4x2e5-wd1 --name recipe-cnn
    python benchmarks/recipe.py --seeds 3 \
        --datasets breast_cancer_mlp,classification4_mlp,classification10_noisy_mlp,mnist1d_mlp,digits_mlp \
        --candidates 4x1-epoch0.03,4x1-epoch0.04,4x1-epoch0.05 --name recipe-mlp5
    python benchmarks/recipe.py --seeds 5 \
        --datasets wine_mlp,iris_mlp,breast_cancer300_mlp,classification300_mlp,breast_cancer_mlp \
        --candidates chosen,4x1,4x1-epoch0.005,4x1-epoch0.01,4x1-epoch0.02,cv-decay,de20,chosen-es,4x1-es \
        --name recipe-tiny
    python benchmarks/recipe.py --seeds 3 --datasets digits_mlp,classification4_mlp,mnist1d_mlp \
        --candidates chosen,4x1,cv-decay,de20 --name recipe-cv
    python benchmarks/recipe.py --seeds 5 \
        --datasets wine_mlp,iris_mlp,breast_cancer300_mlp,classification300_mlp,breast_cancer_mlp,\
digits_mlp,mnist1d_mlp,classification4_mlp,classification10_noisy_mlp \
        --candidates chosen,4x1,holdout,de6 --name recipe-holdout
    python benchmarks/recipe.py --render

Results: benchmarks/results/recipe.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, markdown_table, write_results  # noqa: E402
from defaults import CONFIG, espro_extras, estimator_proba, run_suite, template  # noqa: E402
from quality import as_model_input as model_input  # noqa: E402
from quality import load, scaled, scores, shift_sets, temperature  # noqa: E402

from skspro import DeepEnsembleClassifier, ESPROClassifier, _members, _training  # noqa: E402
from skspro.metrics import negative_log_likelihood as nll  # noqa: E402

RECIPES = Path(__file__).resolve().parent / "configs" / "recipe.json"
METRICS = ("val_nll", "val_ts_nll", "test_nll", "test_ts_nll")


def score_networks(networks: dict, y_val, y_test) -> dict:
    """Validation and test NLL of the networks' mean, raw and temperature-scaled (fitted on val)."""
    proba = {key: p.mean(0) for key, p in networks.items()}
    t = temperature(np.log(np.clip(proba["val"], 1e-12, None)), y_val)
    test = scores(y_test, proba["test"])
    return {
        "val_nll": scores(y_val, proba["val"])["nll"],
        "val_ts_nll": scores(y_val, scaled(proba["val"], t))["nll"],
        "test_nll": test["nll"],
        "test_ts_nll": scores(y_test, scaled(proba["test"], t))["nll"],
        "test_error": test["error"],
        **shift_scores(proba, y_val, t),
    }


SHIFT_METRICS = ("nll", "error", "ece")


def shift_scores(proba: dict, y_val, t: float) -> dict:
    """Scores on the shifted copies of the validation split (``--shift``), averaged over
    shifts and severities, raw and temperature-scaled (``t`` fitted on the clean split)."""
    shifted = [p for key, p in proba.items() if key.startswith("shift/")]
    if not shifted:
        return {}
    out = {}
    for prefix, transform in (("", lambda p: p), ("ts_", lambda p: scaled(p, t))):
        values = [scores(y_val, transform(p)) for p in shifted]
        for metric in SHIFT_METRICS:
            out[f"val_shift_{prefix}{metric}"] = float(np.mean([v[metric] for v in values]))
    return out


@contextlib.contextmanager
def vertex_optimizer(**extra):
    """Study-only: extra optimizer settings for vertex training (members untouched)."""
    original = _members._vertex_net_kwargs
    _members._vertex_net_kwargs = lambda net: {**original(net), **extra}
    try:
        yield
    finally:
        _members._vertex_net_kwargs = original


def fit_candidate(net, params: dict, seed: int, memory: str, X, y) -> tuple:
    """Fit one candidate; members shared through ``memory`` unless the candidate changes them.

    Returns the fitted model and what the row records beside its scores: for a ``cv_grid``
    candidate the settings its search chose (``cv_choice``)."""
    params = dict(params)
    if "deep_ensemble_members" in params:  # a larger deep ensemble, e.g. at a search's cost
        model = DeepEnsembleClassifier(net, n_members=params["deep_ensemble_members"], random_state=seed)
        return model.fit(X, y), {}
    template_params = params.pop("template", {})
    optimizer = dict(params.pop("vertex_optimizer", {}))
    if "optimizer" in optimizer:
        optimizer["optimizer"] = getattr(torch.optim, optimizer["optimizer"])
    if template_params:
        net = clone(net).set_params(**template_params)
    per_epoch = params.pop("vertex_decay_per_epoch", None)
    if per_epoch is not None:  # the estimator's own "auto" rule at another share per epoch
        params["vertex_weight_decay"] = "auto"
    grid = params.pop("cv_grid", None)
    if holdout(params):  # its own probe and members, no shared cache: its time is a user's
        model = ESPROClassifier(net, random_state=seed, **params).fit(X, y)
        return model, {"cv_choice": json.dumps({"vertex_weight_decay": model.vertex_weight_decay_})}
    shared = not template_params and not optimizer  # vertex keys do not see study-only settings
    model = ESPROClassifier(net, random_state=seed, memory=memory if shared else None, **params)
    with vertex_optimizer(**optimizer), auto_decay_per_epoch(per_epoch):
        if grid is None:
            return model.fit(X, y), {}
        # What a user can do on small data: choose the settings by cross-validated NLL (members
        # trained once per fold through memory=); the refit model is returned.
        folds = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed)
        with tempfile.TemporaryDirectory() as own:  # its own cache: its time is a user's from scratch
            search = GridSearchCV(model.set_params(memory=own), grid, cv=folds, scoring="neg_log_loss")
            search.fit(X, y)
        return search.best_estimator_, {"cv_choice": json.dumps(search.best_params_)}


def warm_up(net, X, y) -> None:
    """One short untimed fit, so that no timed fit pays the process's one-time start-up."""
    global _WARM
    if not _WARM:
        DeepEnsembleClassifier(clone(net).set_params(max_epochs=1), n_members=1, random_state=0).fit(X, y)
        _WARM = True


_WARM = False


@contextlib.contextmanager
def auto_decay_per_epoch(share: float | None):
    """Study-only: ``vertex_weight_decay="auto"`` removing ``share`` of the vertex per epoch
    (its memory key holds the share, so cached vertices are not mixed up)."""
    original = _training.AUTO_DECAY_PER_EPOCH
    if share is not None:
        _training.AUTO_DECAY_PER_EPOCH = share
    try:
        yield
    finally:
        _training.AUTO_DECAY_PER_EPOCH = original


def holdout(params: dict) -> bool:
    """Whether the candidate chooses its vertex decay on held-out rows of its own
    (``vertex_weight_decay="holdout"``: a probe member the fitted model does not hold)."""
    return params.get("vertex_weight_decay") == "holdout"


def from_scratch(params: dict) -> bool:
    """Whether the candidate is fitted without the shared cache (:data:`FROM_SCRATCH`, holdout)."""
    return bool(FROM_SCRATCH & set(params)) or holdout(params)


#: Folds of the candidates that choose their settings by cross-validation (``cv_grid``).
CV_FOLDS = 3

#: Candidates fitted without the shared cache (a search with its own, a larger deep ensemble), whose
#: fit time is reported over the default deep ensemble's (``SEARCH_TIME``): the others load cached
#: members, so their time is not what a user would spend.
FROM_SCRATCH = {"cv_grid", "deep_ensemble_members"}
SEARCH_TIME = "fit time / DE fit"

#: How the default deep ensemble's members fit, per data set: NLL on their training rows, and
#: their validation NLL over it (how far they over-fit).
MEMBER_FIT_COLUMNS = {
    "members_train_nll": "DE members train NLL",
    "members_val_over_train": "DE members val / train NLL",
}

#: Issue 11's targets, applied to the validation split to choose a recipe.
MAX_WORSE_PERCENT = 1.0
MAX_SAMPLED_OVER_MEMBERS = 1.02
#: Shifted validation copies draw from ``seed + VAL_SHIFT_SEED_OFFSET``.
VAL_SHIFT_SEED_OFFSET = 10_000


def run_seed(name: str, spec: dict, config: dict, recipes: dict, seed: int) -> list[dict]:
    X_train, X_val, X_test, y_train, y_val, y_test = load(spec, seed, config["split"])
    X_fit = model_input(spec, X_train)
    sets = {"val": model_input(spec, X_val), "test": model_input(spec, X_test)}
    if config.get("study_shift"):  # shifted copies of the validation split, never of the test split
        # their own noise and corruption draws: not those of defaults.py's shifted test split
        for key, X in shift_sets(spec, config["shift"], X_train, X_val, seed + VAL_SHIFT_SEED_OFFSET).items():
            sets[f"shift/{key}"] = model_input(spec, X)
    labels = np.unique(y_train)
    net = template(spec, X_fit.shape[1:], len(labels), None)
    base = {"dataset": name, "seed": seed}
    warm_up(net, X_fit, y_train)
    started = time.perf_counter()
    de = DeepEnsembleClassifier(net, random_state=seed).fit(X_fit, y_train)
    de_s = time.perf_counter() - started
    de_epochs = int(sum(len(m.history) for m in de.estimators_))
    de_networks = estimator_proba(de, sets)
    de_scores = score_networks(de_networks, y_val, y_test)
    # How far the members over-fit: their mean NLL on the validation split over that on the rows they fit.
    train_nll = np.mean([nll(y_train, p, labels=labels) for p in de.predict_proba_networks(X_fit)])
    gap = np.mean([nll(y_val, p, labels=labels) for p in de_networks["val"]]) / train_nll
    rows = [
        {
            **base,
            "method": "DE default",
            "epochs": de_epochs,
            "fit_s": de_s,
            "members_train_nll": train_nll,
            "members_val_over_train": gap,
            **de_scores,
        }
    ]
    with tempfile.TemporaryDirectory() as memory:
        for label, params in recipes.items():
            started = time.perf_counter()
            model, recorded = fit_candidate(net, params, seed, memory, X_fit, y_train)
            fit_s = time.perf_counter() - started
            member = sum(len(m.history) for m in model.estimators_)
            vertex = sum(len(h) for hs in model.vertex_histories_ for h in hs)
            # A search or a probe trains more than the fitted model holds: its cost is in time only.
            epochs = np.nan if "cv_grid" in params or holdout(params) else int(member + vertex)
            networks = estimator_proba(model, sets)
            ratios = [
                espro_extras(model, networks[key], sets[key], y_split, labels)["sampled_over_members"]
                for key, y_split in (("test", y_test), ("val", y_val))
            ]
            rows.append(
                {
                    **base,
                    "method": label,
                    "epochs": epochs,
                    "study_s": time.perf_counter() - started,
                    # fitted without the shared cache: the time a user would spend
                    **({"scratch_fit_s": fit_s} if from_scratch(params) else {}),
                    **recorded,
                    "sampled_over_members": ratios[0],
                    "val_sampled_over_members": ratios[1],
                    **score_networks(networks, y_val, y_test),
                }
            )
    print(f"{name} seed {seed} done", flush=True)
    return rows


def summary(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.DataFrame(rows)
    de = df[df.method == "DE default"].set_index(["dataset", "seed"])
    per = []
    for (dataset, method), group in df[df.method != "DE default"].groupby(["dataset", "method"], sort=False):
        ref = de.loc[[(dataset, s) for s in group.seed]]
        entry = {"dataset": dataset, "method": method}
        for metric in [*METRICS, *(c for c in df.columns if c.startswith("val_shift_"))]:
            diff = group[metric].to_numpy() - ref[metric].to_numpy()
            entry[f"{metric} d%"] = 100 * diff.mean() / ref[metric].mean()
            entry[f"{metric} wins"] = f"{int((diff < 0).sum())}/{len(diff)}"
        entry["epochs / DE"] = group.epochs.mean() / ref.epochs.mean()
        if "scratch_fit_s" in group and group.scratch_fit_s.notna().all():  # FROM_SCRATCH candidates
            entry[SEARCH_TIME] = group.scratch_fit_s.mean() / ref.fit_s.mean()
        if "cv_choice" in group and group.cv_choice.notna().all():  # what the search chose, per seed
            counts = group.cv_choice.map(lambda c: ", ".join(map(str, json.loads(c).values()))).value_counts()
            entry["cv choice (seeds)"] = "; ".join(f"{value} ({n})" for value, n in counts.items())
        entry["sampled / members"] = group.sampled_over_members.mean()
        if "val_sampled_over_members" in group:  # recorded since recipe-mlp4
            entry["val sampled / members"] = group.val_sampled_over_members.mean()
        for column, label in MEMBER_FIT_COLUMNS.items():  # recorded since recipe-tiny / recipe-cv
            if column in ref and ref[column].notna().all():
                entry[label] = ref[column].mean()
        per.append(entry)
    per = pd.DataFrame(per)
    overall = (
        per.groupby("method", sort=False)
        .agg(
            **{
                "val d% mean": ("val_nll d%", "mean"),
                "val d% worst": ("val_nll d%", "max"),
                "val TS d% mean": ("val_ts_nll d%", "mean"),
                "val TS d% worst": ("val_ts_nll d%", "max"),
                "test d% mean": ("test_nll d%", "mean"),
                "test TS d% mean": ("test_ts_nll d%", "mean"),
                "epochs / DE": ("epochs / DE", "mean"),
                **({SEARCH_TIME: (SEARCH_TIME, "mean")} if SEARCH_TIME in per else {}),
                "worst sampled / members": ("sampled / members", "max"),
                **(
                    {"worst val sampled / members": ("val sampled / members", "max")}
                    if "val sampled / members" in per
                    else {}
                ),
                **{
                    f"val shift {label}{metric} d% worst": (f"val_shift_{key}{metric} d%", "max")
                    for label, key in (("", ""), ("TS ", "ts_"))
                    for metric in SHIFT_METRICS
                    if f"val_shift_{key}{metric} d%" in per
                },
            }
        )
        .reset_index()
    )
    return per, overall


def render(config: dict, recipes: dict, rows: list[dict], env: dict) -> str:
    per, overall = summary(rows)
    eligible = overall[
        (overall["epochs / DE"] <= 1.0 + 1e-9)
        & (overall["val d% worst"] <= MAX_WORSE_PERCENT)
        & (overall["val TS d% worst"] <= MAX_WORSE_PERCENT)
    ]
    if "worst val sampled / members" in overall:
        ratio = eligible["worst val sampled / members"]
        eligible = eligible[ratio.isna() | (ratio <= MAX_SAMPLED_OVER_MEMBERS)]  # NaN: not recorded
    chosen = eligible.sort_values("val TS d% worst").iloc[0]["method"] if len(eligible) else None
    lines = [
        "# Simplex recipe study (issue 11)",
        "",
        *[f"- {k}: {v}" for k, v in env.items()],
        f"- seeds: {config['seeds']}; data sets: {', '.join(config['datasets'])}",
        "",
        "Differences are paired over seeds against `DeepEnsembleClassifier()` (the default deep ensemble, "
        "5 members), in % of its mean; `val` columns decide, `test` columns are for the record. "
        "TS on validation: temperature fitted on the validation split.",
        "",
        "## Candidates",
        "",
        *[f"- `{k}`: `{json.dumps(v)}`" for k, v in recipes.items()],
        "",
        "## Over data sets",
        "",
        markdown_table(overall.to_dict("records"), list(overall.columns)),
        "",
        f"Chosen: `{chosen}`, the lowest worst-case validation TS difference among the candidates within "
        f"the deep ensemble's epochs that meet issue 11's targets on the validation split (worst raw and TS "
        f"difference at most +{MAX_WORSE_PERCENT:g} %, sampled networks at most "
        f"{MAX_SAMPLED_OVER_MEMBERS:g}x their members' NLL where recorded).",
        "",
        "## Per data set",
        "",
        markdown_table(per.to_dict("records"), list(per.columns)),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--candidates", default=None, help="comma-separated names from configs/recipe.json")
    parser.add_argument("--name", default="recipe")
    parser.add_argument(
        "--shift",
        action="store_true",
        help="also score shifted copies of the validation split (noise, corruptions)",
    )
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args(argv)
    config = json.loads(CONFIG.read_text())
    stored_recipes = json.loads(RECIPES.read_text())
    recipes = {k: {**stored_recipes["base"], **v} for k, v in stored_recipes["candidates"].items()}
    if args.datasets:
        config["datasets"] = {d: config["datasets"][d] for d in args.datasets.split(",")}
    if args.seeds is not None:
        config["seeds"] = config["seeds"][: args.seeds]
    if args.candidates:
        recipes = {k: recipes[k] for k in args.candidates.split(",")}
    config["study_shift"] = args.shift
    if args.render:
        stored = json.loads((RESULTS / f"{args.name}.json").read_text())
        config, recipes, rows = stored["config"], stored["recipes"], stored["rows"]
        env = stored["environment"]
    else:
        rows, env = run_suite(config, lambda name, spec, seed: run_seed(name, spec, config, recipes, seed))
    markdown = render(config, recipes, rows, env)
    data = {"environment": env, "config": config, "recipes": recipes, "rows": rows}
    print(markdown)
    print("written:", *write_results(args.name, data, markdown, RESULTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
