"""ESPRO against deep ensembles at equal members and at equal cost, with controls.

For each data set:

1. **Tuning** (validation split of the tuning seed only, never the test
   split): members are trained once; for every ``reg`` x ``vertex_epochs`` x
   ``vertex_lr`` (a multiple of the members' lr) of the grid one vertex per
   member is added (warm start) and the validation NLL of the ensemble is
   recorded. The best setting is used for all seeds.
2. **Paired runs** (every seed; train / validation / test split): the deep
   ensemble's ``max_members`` members are trained once; each *recipe* (e.g.
   one or five sampled networks per vertex-training step) adds its vertices
   to copies of the same members (warm start, so its members are exactly the
   deep ensemble's). Compared, for k = 1 .. ``max_members`` members:

   * DE-k: the first k members; ESPRO-k-v (per recipe): the first k members
     with simplexes of their first v + 1 vertices (``n_samples`` fresh
     uniform points per simplex, normalisation statistics re-estimated);
   * costs: measured seconds, and epoch-equivalents (member epochs plus
     vertex epochs weighted by the measured vertex-epoch / member-epoch ratio
     of the run);
   * controls: temperature scaling fitted on the validation split (for every
     method), and "random-v": untrained random points at the same distances
     from each member as its trained vertices;
   * diversity: disagreement and mutual information among the networks of
     one simplex vs among members; relative edge length and log-volume per
     vertex;
   * shift: Gaussian input noise (every data set) and, for images, the
     corruptions of :func:`skspro.datasets.corrupt_images` at several
     severities (error, NLL, ECE).

Usage::

    python benchmarks/quality.py                      # about an hour on 2 CPU cores
    python benchmarks/quality.py --datasets digits_cnn
    python benchmarks/quality.py --quick              # a smoke run (seconds)

Settings: benchmarks/configs/quality.json (or ``--config NAME``). Results:
benchmarks/results/<config>.{json,md,png}.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize_scalar
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine, make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, classifier_net, environment, markdown_table, write_results  # noqa: E402

from skspro import ESPROClassifier, default_estimator  # noqa: E402
from skspro._bench import epoch_ratio  # noqa: E402
from skspro.datasets import corrupt_images, make_mnist1d  # noqa: E402
from skspro.metrics import (  # noqa: E402
    brier_score,
    expected_calibration_error,
    mutual_information,
    negative_log_likelihood,
)
from skspro.modules import SmallCNN  # noqa: E402
from skspro.simplex import (  # noqa: E402
    StackedVertices,
    forward_networks,
    make_generator,
    recompute_norm_statistics,
    sample_simplex_weights,
)

# ------------------------------------------------------------------ data


def load(spec: dict, seed: int, split: dict):
    if spec["data"] == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    elif spec["data"] == "mnist1d":
        X, y = make_mnist1d(n_samples=spec["n_samples"], random_state=0)
    elif spec["data"] == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        if "n_samples" in spec:  # a stratified subset: small data where the members over-fit
            X, _, y, _ = train_test_split(X, y, train_size=spec["n_samples"], random_state=0, stratify=y)
    elif spec["data"] == "wine":
        X, y = load_wine(return_X_y=True)
    elif spec["data"] == "iris":
        X, y = load_iris(return_X_y=True)
    elif spec["data"] == "classification":
        params = {k: spec[k] for k in ("n_samples", "n_features", "n_informative", "n_classes", "flip_y")}
        X, y = make_classification(**params, random_state=0)
    else:
        raise ValueError(f"unknown data {spec['data']!r}")
    X = X.astype(np.float32)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=split["test"], random_state=seed, stratify=y
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=split["val"] / (1 - split["test"]), random_state=seed, stratify=y_rest
    )
    if spec["data"] in ("breast_cancer", "wine", "iris", "classification"):
        scaler = StandardScaler().fit(X_train)
        X_train, X_val, X_test = (scaler.transform(a).astype(np.float32) for a in (X_train, X_val, X_test))
    return X_train, X_val, X_test, y_train, y_val, y_test


def as_model_input(spec: dict, X: np.ndarray) -> np.ndarray:
    """Rows as the model takes them (images for the CNN)."""
    if spec.get("model") == "cnn":
        return X.reshape(len(X), 1, *spec["image_shape"])
    if spec.get("model") == "cnn1d":
        return X.reshape(len(X), 1, -1)
    return X


def shift_sets(spec: dict, shift: dict, X_train: np.ndarray, X_test: np.ndarray, seed: int) -> dict:
    """Shifted copies of ``X_test`` (the test split here; ``recipe.py`` passes the validation
    split): Gaussian noise scaled by the training split's feature spread, and image corruptions
    for images."""
    sets = {}
    sigma = X_train.std(0, keepdims=True)
    rng = np.random.default_rng(seed)
    draw = rng.standard_normal(X_test.shape).astype(np.float32)
    for severity in shift["noise"]:
        sets[f"noise/{severity}"] = X_test + severity * sigma * draw
    if "image_shape" in spec:
        for corruption in shift["corruptions"]:
            for severity in shift["severities"]:
                sets[f"{corruption}/{severity}"] = corrupt_images(
                    X_test,
                    corruption,
                    severity,
                    image_shape=tuple(spec["image_shape"]),
                    value_range=(0.0, 1.0),
                    random_state=seed,
                ).astype(np.float32)
    return sets


# ------------------------------------------------------------------ models


def template(spec: dict, device: str):
    if spec.get("model") == "cnn":
        return classifier_net(
            SmallCNN,
            lr=spec["lr"],
            max_epochs=spec["epochs"],
            device=device,
            in_channels=1,
            channels=spec["channels"],
            batch_norm=spec["batch_norm"],
        )
    return default_estimator().set_params(
        max_epochs=spec["epochs"],
        module__hidden_units=tuple(spec["hidden_units"]),
        lr=spec["lr"],
        device=device,
    )


def fit_members(spec: dict, n_members: int, seed: int, n_samples: int, device: str, X, y) -> ESPROClassifier:
    return ESPROClassifier(
        template(spec, device), n_members=n_members, n_vertices=0, n_samples=n_samples, random_state=seed
    ).fit(X, y)


def add_vertices(members: ESPROClassifier, X, y, **params) -> ESPROClassifier:
    """Copies of the members with vertices added (warm start: the members are unchanged)."""
    return copy.deepcopy(members).set_params(warm_start=True, **params).fit(X, y)


# ------------------------------------------------------------------ evaluation


def network_probs(model, member: int, vertices: StackedVertices, weights, X_fit, sets) -> dict:
    """Softmax outputs {set: (S, n, C)} of the networks at ``weights``.

    Sampled networks get their own normalisation statistics (re-estimated on
    the training split, as ESPRO does); a member alone keeps its own.
    """
    net = model.estimators_[member]
    module = net.module_.eval()
    buffers = dict(module.named_buffers())
    params = vertices.combine(weights)
    stats = {}
    if vertices.n_vertices > 1:
        stats = recompute_norm_statistics(module, params, buffers, _batches(X_fit, 256))
    buffers.update(stats)
    out = {}
    with torch.no_grad():
        for key, X in sets.items():
            logits = forward_networks(
                module, params, buffers, torch.as_tensor(X), batched_buffers=frozenset(stats)
            )
            out[key] = torch.softmax(logits.double(), -1).numpy()
    return out


def _batches(X: np.ndarray, size: int) -> list[torch.Tensor]:
    return [torch.as_tensor(X[i : i + size]) for i in range(0, len(X), size)]


def random_vertices(simplex: StackedVertices, v: int, seed: int) -> StackedVertices:
    """Vertex 0 plus v untrained points at the trained vertices' distances, random directions."""
    flat = simplex.flat().double()
    generator = make_generator(seed)
    rows = [flat[0]]
    for i in range(1, v + 1):
        direction = torch.randn(flat.shape[1], generator=generator, dtype=torch.float64)
        rows.append(flat[0] + direction / direction.norm() * (flat[i] - flat[0]).norm())
    stacked = torch.stack(rows).float()
    params, start = {}, 0
    for name, p in simplex.params.items():
        size = p[0].numel()
        params[name] = stacked[:, start : start + size].reshape(v + 1, *p.shape[1:])
        start += size
    return StackedVertices(params)


def first_vertices(simplex: StackedVertices, v: int) -> StackedVertices:
    return StackedVertices({n: p[: v + 1] for n, p in simplex.params.items()})


def temperature(log_proba_val: np.ndarray, y_val: np.ndarray) -> float:
    def nll(t):
        z = log_proba_val / t
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -logp[np.arange(len(y_val)), y_val].mean()

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


def scaled(proba: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(proba, 1e-12, None)) / t
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def scores(y: np.ndarray, proba: np.ndarray) -> dict:
    labels = np.arange(proba.shape[1])
    return {
        "error": float(np.mean(proba.argmax(1) != y)),
        "nll": negative_log_likelihood(y, proba, labels=labels),
        "ece": expected_calibration_error(y, proba, labels=labels),
        "brier": brier_score(y, proba, labels=labels),
    }


# ------------------------------------------------------------------ one data set


def tune(name: str, spec: dict, config: dict, device: str) -> tuple[dict, list[dict]]:
    """Pick reg and vertex_epochs on the validation split of the tuning seed."""
    grid = config["tuning"]
    seed = grid["seed"]
    X_train, X_val, _, y_train, y_val, _ = load(spec, seed, config["split"])
    X_train, X_val = as_model_input(spec, X_train), as_model_input(spec, X_val)
    members = fit_members(spec, grid["members"], seed, config["n_samples"], device, X_train, y_train)
    rows = []
    for reg, vertex_epochs, lr_scale in itertools.product(
        grid["reg"], grid["vertex_epochs"], grid.get("vertex_lr_scale", [1.0])
    ):
        setting = {"reg": reg, "vertex_epochs": vertex_epochs, "vertex_lr": lr_scale * spec["lr"]}
        model = add_vertices(
            members, X_train, y_train, n_vertices=1, n_train_samples=grid["n_train_samples"], **setting
        )
        val_nll = negative_log_likelihood(y_val, model.predict_proba(X_val), labels=members.classes_)
        rows.append(
            {
                "dataset": name,
                **setting,
                "val_nll": val_nll,
                "relative_edge_length": float(model.relative_edge_lengths_.mean()),
            }
        )
        print(rows[-1], flush=True)
    members_nll = negative_log_likelihood(y_val, members.predict_proba(X_val), labels=members.classes_)
    best = min(rows, key=lambda r: r["val_nll"])
    print(f"{name}: tuned {best} (members alone: val NLL {members_nll:.4f})", flush=True)
    return {key: best[key] for key in ("reg", "vertex_epochs", "vertex_lr")}, rows


def run_seed(name: str, spec: dict, config: dict, seed: int, tuned: dict, device: str) -> list[dict]:
    X_train, X_val, X_test, y_train, y_val, y_test = load(spec, seed, config["split"])
    sets = {"val": X_val, "test": X_test, **shift_sets(spec, config["shift"], X_train, X_test, seed)}
    sets = {key: as_model_input(spec, X) for key, X in sets.items()}
    X_fit = as_model_input(spec, X_train)
    K, S = config["max_members"], config["n_samples"]
    started = time.perf_counter()
    members = fit_members(spec, K, seed, S, device, X_fit, y_train)
    member_time = np.asarray(members.member_fit_times_)
    models = {
        recipe: add_vertices(
            members,
            X_fit,
            y_train,
            n_vertices=settings["max_vertices"],
            n_train_samples=settings["n_train_samples"],
            **tuned,
        )
        for recipe, settings in config["recipes"].items()
    }
    ratios = {recipe: epoch_ratio(model) for recipe, model in models.items()}
    # probs[(kind, v)][member] = {set: (S, n, C)}
    probs: dict = {}
    control_recipe = next(iter(config["recipes"]))
    for i in range(K):
        base = models[control_recipe].simplexes_[i]
        probs.setdefault(("DE", 0), []).append(
            network_probs(members, i, first_vertices(base, 0), torch.ones((1, 1)), X_fit, sets)
        )
        for recipe, model in models.items():
            simplex = model.simplexes_[i]
            for v in range(1, config["recipes"][recipe]["max_vertices"] + 1):
                weights = sample_simplex_weights(v + 1, S, make_generator(seed * 1000 + i * 10 + v))
                probs.setdefault((f"ESPRO[{recipe}]", v), []).append(
                    network_probs(model, i, first_vertices(simplex, v), weights, X_fit, sets)
                )
                if recipe == control_recipe:
                    rand = random_vertices(simplex, v, seed * 1000 + i)
                    probs.setdefault(("random", v), []).append(
                        network_probs(model, i, rand, weights, X_fit, sets)
                    )
    rows = []
    for (kind, v), per_member in probs.items():
        recipe = kind[6:-1] if kind.startswith("ESPRO") else control_recipe
        for k in range(1, K + 1):
            chosen = per_member[:k]
            vertex_time = models[recipe].vertex_fit_times_[:k, :v].sum() if v else 0.0
            cost_s = float(member_time[:k].sum() + vertex_time)
            epochs = k * (spec["epochs"] + v * tuned["vertex_epochs"] * ratios[recipe])
            mean = {s: np.mean([p[s].mean(0) for p in chosen], axis=0) for s in sets}
            t = temperature(np.log(np.clip(mean["val"], 1e-12, None)), y_val)
            row = {
                "dataset": name,
                "seed": seed,
                "method": "DE" if kind == "DE" else f"{kind}-{v}v",
                "members": k,
                "cost_s": cost_s,
                "epoch_equivalents": epochs,
                "temperature": t,
            }
            row.update({f"test_{m}": val for m, val in scores(y_test, mean["test"]).items()})
            row.update({f"ts_{m}": val for m, val in scores(y_test, scaled(mean["test"], t)).items()})
            for key in sets:
                if key not in ("val", "test"):
                    row.update({f"{key}_{m}": val for m, val in scores(y_test, mean[key]).items()})
            if kind != "DE":
                within = [np.mean(p["test"].argmax(-1) != p["test"].mean(0).argmax(-1)) for p in chosen]
                row["disagreement_within_simplex"] = float(np.mean(within))
                row["mi_within_simplex"] = float(
                    np.mean([mutual_information(p["test"]).mean() for p in chosen])
                )
            elif k > 1:
                member_probs = np.stack([p["test"][0] for p in chosen])
                row["disagreement_between_members"] = float(
                    np.mean(member_probs.argmax(-1) != mean["test"].argmax(-1))
                )
                row["mi_between_members"] = float(mutual_information(member_probs).mean())
            rows.append(row)
    for recipe, model in models.items():
        rows.append(
            {
                "dataset": name,
                "seed": seed,
                "method": f"_simplex[{recipe}]",
                "members": K,
                "vertex_epoch_over_member_epoch": ratios[recipe],
                "relative_edge_lengths": model.relative_edge_lengths_.mean(0).round(4).tolist(),
                "log_volumes": model.log_volumes_.mean(0).round(2).tolist(),
            }
        )
    took = time.perf_counter() - started
    print(f"{name} seed {seed}: {took:.0f} s; vertex epoch / member epoch {ratios}", flush=True)
    return rows


# ------------------------------------------------------------------ summaries


def equal_cost(df: pd.DataFrame) -> pd.DataFrame:
    """Each ESPRO point against the deep ensembles just below and just above its cost (per seed)."""
    out = []
    for (dataset, seed), group in df.groupby(["dataset", "seed"]):
        de = group[group.method == "DE"].sort_values("epoch_equivalents")
        for _, row in group[group.method.str.startswith("ESPRO")].iterrows():
            below = de[de.epoch_equivalents <= row.epoch_equivalents + 1e-9].iloc[-1]
            above = de[de.epoch_equivalents >= row.epoch_equivalents - 1e-9]
            above = above.iloc[0] if len(above) else None
            out.append(
                {
                    "dataset": dataset,
                    "seed": seed,
                    "method": row.method,
                    "members": row.members,
                    "epoch_equivalents": row.epoch_equivalents,
                    "de_below": int(below.members),
                    "de_above": int(above.members) if above is not None else np.nan,
                    "nll": row.test_nll,
                    "nll_de_below": below.test_nll,
                    "nll_de_above": above.test_nll if above is not None else np.nan,
                    "ts_nll": row.ts_nll,
                    "ts_nll_de_below": below.ts_nll,
                    "ts_nll_de_above": above.ts_nll if above is not None else np.nan,
                    "error": row.test_error,
                    "error_de_below": below.test_error,
                    "error_de_above": above.test_error if above is not None else np.nan,
                }
            )
    return pd.DataFrame(out)


def paired_table(costs: pd.DataFrame, members: list[int]) -> pd.DataFrame:
    chosen = costs[costs.members.isin(members)]

    def wins(column, against):
        return lambda s: int((s < chosen.loc[s.index, against]).sum())

    return (
        chosen.groupby(["dataset", "method", "members"])
        .agg(
            epochs=("epoch_equivalents", "mean"),
            de_below=("de_below", "first"),
            de_above=("de_above", "first"),
            nll=("nll", "mean"),
            nll_de_below=("nll_de_below", "mean"),
            nll_de_above=("nll_de_above", "mean"),
            wins_below=("nll", wins("nll", "nll_de_below")),
            wins_above=("nll", wins("nll", "nll_de_above")),
            ts_nll=("ts_nll", "mean"),
            ts_nll_de_below=("ts_nll_de_below", "mean"),
            ts_nll_de_above=("ts_nll_de_above", "mean"),
            ts_wins_below=("ts_nll", wins("ts_nll", "ts_nll_de_below")),
            ts_wins_above=("ts_nll", wins("ts_nll", "ts_nll_de_above")),
            error=("error", "mean"),
            error_de_below=("error_de_below", "mean"),
            error_de_above=("error_de_above", "mean"),
        )
        .reset_index()
    )


def shift_table(df: pd.DataFrame, members: int) -> pd.DataFrame:
    """Error, NLL and ECE per shift kind and severity (mean over seeds), at ``members`` members."""
    at_k = df[df.members == members]
    records = []
    keys = sorted({c.rsplit("_", 1)[0] for c in df.columns if "/" in c})
    for (dataset, method), group in at_k.groupby(["dataset", "method"]):
        for key in keys:
            if group[f"{key}_nll"].isna().all():
                continue
            kind, severity = key.split("/")
            records.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "shift": "corruptions (mean)" if kind not in ("noise",) else "gaussian noise x std",
                    "kind": kind,
                    "severity": severity,
                    "error": group[f"{key}_error"].mean(),
                    "nll": group[f"{key}_nll"].mean(),
                    "ece": group[f"{key}_ece"].mean(),
                }
            )
    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    return (
        frame.groupby(["dataset", "method", "shift", "severity"])[["error", "nll", "ece"]]
        .mean()
        .reset_index()
    )


def plot(df: pd.DataFrame, path: Path) -> None:
    """Test NLL vs members, and test NLL before / after temperature scaling vs training cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(df.dataset))
    fig, axes = plt.subplots(3, len(datasets), figsize=(4.2 * len(datasets), 10), squeeze=False)
    panels = [
        ("members", "test_nll", "test NLL", "members (ensemble components)"),
        ("epoch_equivalents", "test_nll", "test NLL", None),
        ("epoch_equivalents", "ts_nll", "test NLL after temperature scaling", None),
    ]
    for j, dataset in enumerate(datasets):
        frame = df[df.dataset == dataset]
        for method in dict.fromkeys(frame.method):
            if method.startswith("random"):
                continue
            mean = frame[frame.method == method].groupby("members")[
                ["epoch_equivalents", "test_nll", "ts_nll"]
            ]
            mean = mean.mean().reset_index()
            style = "k-o" if method == "DE" else "--."
            for i, (x, y, _, _) in enumerate(panels):
                axes[i, j].plot(mean[x], mean[y], style, label=method, markersize=4)
        axes[0, j].set_title(dataset)
        for i, (_, _, ylabel, xlabel) in enumerate(panels):
            axes[i, j].set_xlabel(xlabel or "training cost (member epoch-equivalents)")
            if j == 0:
                axes[i, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--render", action="store_true", help="rebuild the tables and plot from the stored JSON results"
    )
    parser.add_argument(
        "--config", default="quality", help="a file name in benchmarks/configs/, without .json"
    )
    args = parser.parse_args(argv)
    config = json.loads((Path(__file__).resolve().parent / "configs" / f"{args.config}.json").read_text())
    torch.set_num_threads(config.get("torch_threads", torch.get_num_threads()))
    if args.quick:
        config.update(seeds=[0], max_members=2, n_samples=2)
        config["tuning"].update(members=1, reg=[1e-4], vertex_epochs=[1])
        config["shift"].update(corruptions=config["shift"]["corruptions"][:1], severities=[1])
        for recipe in config["recipes"].values():
            recipe["max_vertices"] = 1
        for spec in config["datasets"].values():
            spec.update(epochs=2)
    name = args.config + ("-quick" if args.quick else "")
    if args.render:
        stored = json.loads((RESULTS / f"{name}.json").read_text())
        config, tuned, tuning_rows, rows, env = (
            stored[k] for k in ("config", "tuned", "tuning", "rows", "environment")
        )
    else:
        names = args.datasets or list(config["datasets"])
        rows, tuning_rows, tuned = [], [], {}
        for dataset in names:
            spec = config["datasets"][dataset]
            tuned[dataset], grid = tune(dataset, spec, config, args.device)
            tuning_rows += grid
            for seed in config["seeds"]:
                rows += run_seed(dataset, spec, config, seed, tuned[dataset], args.device)
        env = environment(args.device)
    markdown, df = report(config, tuned, tuning_rows, rows, env, args.config)
    paths = write_results(
        name,
        {"environment": env, "config": config, "tuned": tuned, "tuning": tuning_rows, "rows": rows},
        markdown,
    )
    png = Path(paths[0]).with_suffix(".png")
    plot(df, png)
    print(markdown)
    print("written:", *paths, png)
    return 0


def summary_table(costs: pd.DataFrame, members: list[int]) -> pd.DataFrame:
    """Wins of each ESPRO configuration over the deep ensembles just below / above its cost, all k."""
    chosen = costs[costs.members.isin(members)].copy()
    for prefix in ("", "ts_"):
        for side in ("below", "above"):
            other = chosen[f"{prefix}nll_de_{side}"]
            chosen[f"{prefix}wins_{side}"] = (chosen[f"{prefix}nll"] < other) & other.notna()
            chosen[f"{prefix}n_{side}"] = other.notna()
    grouped = chosen.groupby(["dataset", "method"])
    out = grouped[["nll", "nll_de_below", "ts_nll", "ts_nll_de_below"]].mean()
    for prefix in ("", "ts_"):
        for side in ("below", "above"):
            wins = grouped[f"{prefix}wins_{side}"].sum().astype(int).astype(str)
            total = grouped[f"{prefix}n_{side}"].sum().astype(int).astype(str)
            out[f"{prefix}wins_vs_de_{side}"] = wins + "/" + total
    return out.reset_index()


def report(config, tuned, tuning_rows, rows, env, config_name) -> tuple[str, pd.DataFrame]:
    """The Markdown report and the rows as a frame (without the per-simplex rows)."""
    df = pd.DataFrame(rows)
    simplex_rows = df[df.method.str.startswith("_simplex")]
    df = df[~df.method.str.startswith("_simplex")]
    K = config["max_members"]
    metrics = ["test_error", "test_nll", "test_ece", "test_brier", "ts_nll", "ts_ece", "epoch_equivalents"]
    summary = df.groupby(["dataset", "method", "members"])[metrics].agg(["mean", "std"]).reset_index()
    summary.columns = [" ".join(c).strip() for c in summary.columns]
    costs = equal_cost(df)
    headline = paired_table(costs, config["headline_members"])
    diversity = (
        df.groupby(["dataset", "method"])[
            [
                "disagreement_within_simplex",
                "mi_within_simplex",
                "disagreement_between_members",
                "mi_between_members",
            ]
        ]
        .mean()
        .reset_index()
    )
    fmt = lambda frame: markdown_table(frame.to_dict("records"), list(frame.columns))  # noqa: E731
    members = config["headline_members"]
    markdown = (
        "# Quality: ESPRO vs deep ensembles (paired, shared members)\n\n"
        + "\n".join(f"- {k}: {v}" for k, v in env.items())
        + f"\n- seeds: {config['seeds']}; settings: benchmarks/configs/{config_name}.json\n"
        + f"- recipes: {json.dumps(config['recipes'])}\n\n"
        "## Summary at equal cost\n\n"
        f"Every ESPRO configuration with {members} members against the deep ensembles whose training "
        "cost (epoch-equivalents: member epochs plus vertex epochs weighted by their measured cost) is "
        "just below and just above its own, per seed: wins on test NLL out of the comparisons made, "
        "before and after temperature scaling (`ts_`, fitted on the validation split); mean NLL of "
        "ESPRO and of the deep ensemble just below.\n\n"
        + fmt(summary_table(costs, members))
        + "\n## Settings tuned on the validation split\n\n"
        f"Grid on seed {config['tuning']['seed']}'s validation split, "
        f"{config['tuning']['members']} members with one vertex each; the lowest validation NLL is used "
        "for every seed.\n\n"
        + fmt(pd.DataFrame([{"dataset": d, **t} for d, t in tuned.items()]))
        + "\n"
        + fmt(pd.DataFrame(tuning_rows))
        + "\n## At equal cost, in detail\n\nAs the summary, per number of members: `de_below` / "
        "`de_above` members, mean NLL, wins (seeds) and test error.\n\n"
        + fmt(headline)
        + f"\n## At equal members (1, 2, 4 and {K}; every k in the JSON and the plot), mean and std over "
        "seeds\n\n"
        + fmt(summary[summary.members.isin(sorted({1, 2, 4, K}))])
        + f"\n## Under dataset shift ({K} members; mean over seeds, corruptions averaged per severity)\n\n"
        + fmt(shift_table(df, K))
        + "\n## Diversity on the test split (mean over k)\n\n"
        + fmt(diversity)
        + "\n## Simplexes (per seed, mean over members)\n\n"
        + fmt(simplex_rows.dropna(axis=1, how="all").astype(str))
    )
    return markdown, df


if __name__ == "__main__":
    sys.exit(main())
