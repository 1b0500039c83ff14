"""ESPRO against deep ensembles at equal members and at equal cost, with controls.

For each data set and seed (train / validation / test split), one
ESPROClassifier with ``max_members`` members and ``max_vertices`` vertices is
fitted; with the same ``random_state`` its members are exactly a
DeepEnsembleClassifier's, so every comparison is paired with shared members:

* DE-k: the first k members;
* ESPRO-k-v: the first k members with simplexes of their first v + 1 vertices
  (``n_samples`` fresh uniform points per simplex);
* costs in seconds of training (members plus vertices, measured) and in
  epoch-equivalents (vertex epochs weighted by the measured cost ratio);
* controls: temperature scaling fitted on the validation split (for both),
  and "random-k-v": untrained random points at the same distances from each
  member as its trained vertices;
* diversity: test disagreement between networks of one simplex vs between
  members;
* shift: Gaussian input noise of ``noise_severities`` x the feature standard
  deviation (NLL, ECE, accuracy).

Usage::

    python benchmarks/quality.py            # about 10 minutes on 2 CPU cores
    python benchmarks/quality.py --quick    # a smoke run

Settings: benchmarks/configs/quality.json. Results:
benchmarks/results/quality.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize_scalar
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, markdown_table, write_results  # noqa: E402

from skspro import ESPROClassifier, default_estimator  # noqa: E402
from skspro.datasets import make_mnist1d  # noqa: E402
from skspro.metrics import brier_score, expected_calibration_error, negative_log_likelihood  # noqa: E402
from skspro.simplex import StackedVertices, forward_networks, make_generator, sample_simplex_weights  # noqa: E402


def load(spec: dict, seed: int, split: dict):
    if spec["data"] == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    elif spec["data"] == "mnist1d":
        X, y = make_mnist1d(n_samples=spec["n_samples"], random_state=0)
    else:
        X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=split["test"], random_state=seed, stratify=y
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=split["val"] / (1 - split["test"]), random_state=seed, stratify=y_rest
    )
    if spec["data"] == "breast_cancer":
        scaler = StandardScaler().fit(X_train)
        X_train, X_val, X_test = (scaler.transform(a).astype(np.float32) for a in (X_train, X_val, X_test))
    return X_train, X_val, X_test, y_train, y_val, y_test


def network_probs(model, member: int, vertices: StackedVertices, weights: torch.Tensor, X: np.ndarray):
    """Softmax outputs (S, n, C) of the networks at ``weights`` of ``vertices``."""
    net = model.estimators_[member]
    module = net.module_.eval()
    with torch.no_grad():
        out = forward_networks(
            module, vertices.combine(weights), dict(module.named_buffers()), torch.as_tensor(X)
        )
    return torch.softmax(out.double(), -1).numpy()


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


def temperature(log_proba_val: np.ndarray, y_val_index: np.ndarray) -> float:
    def nll(t):
        z = log_proba_val / t
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -logp[np.arange(len(y_val_index)), y_val_index].mean()

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


def scaled(proba: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(proba, 1e-12, None)) / t
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def scores(y: np.ndarray, proba: np.ndarray) -> dict:
    return {
        "error": float(np.mean(proba.argmax(1) != y)),
        "nll": negative_log_likelihood(y, proba, labels=np.arange(proba.shape[1])),
        "ece": expected_calibration_error(y, proba, labels=np.arange(proba.shape[1])),
        "brier": brier_score(y, proba, labels=np.arange(proba.shape[1])),
    }


def run_seed(name: str, spec: dict, config: dict, seed: int) -> list[dict]:
    X_train, X_val, X_test, y_train, y_val, y_test = load(spec, seed, config["split"])
    template = default_estimator().set_params(
        max_epochs=spec["epochs"], module__hidden_units=tuple(spec["hidden_units"]), lr=spec["lr"]
    )
    K, V, S = config["max_members"], config["max_vertices"], config["n_samples"]
    model = ESPROClassifier(
        template,
        n_members=K,
        n_vertices=V,
        vertex_epochs=spec["vertex_epochs"],
        reg=spec["reg"],
        n_train_samples=config.get("n_train_samples", 5),
        n_samples=S,
        random_state=seed,
    ).fit(X_train, y_train)
    member_time = model.member_fit_times_
    vertex_time = model.vertex_fit_times_
    epoch_ratio = float(
        np.mean(vertex_time) / spec["vertex_epochs"] / (np.mean(member_time) / spec["epochs"])
    )
    sets = {"val": X_val, "test": X_test}
    sigma = X_train.std(0, keepdims=True)
    noise = np.random.default_rng(seed)
    for severity in config["noise_severities"]:
        sets[f"noise{severity}"] = X_test + severity * sigma * noise.standard_normal(X_test.shape).astype(
            np.float32
        )
    # probs[(kind, v)][member] = {set: (S, n, C)}
    probs: dict = {}
    for i in range(K):
        simplex = model.simplexes_[i]
        for v in range(V + 1):
            if v == 0:
                weights = torch.ones((1, 1))
                verts = StackedVertices({n: p[:1] for n, p in simplex.params.items()})
                probs.setdefault(("DE", 0), []).append(
                    {k: network_probs(model, i, verts, weights, x) for k, x in sets.items()}
                )
                continue
            weights = sample_simplex_weights(v + 1, S, make_generator(seed * 1000 + i * 10 + v))
            verts = StackedVertices({n: p[: v + 1] for n, p in simplex.params.items()})
            probs.setdefault(("ESPRO", v), []).append(
                {k: network_probs(model, i, verts, weights, x) for k, x in sets.items()}
            )
            rand = random_vertices(simplex, v, seed * 1000 + i)
            probs.setdefault(("random", v), []).append(
                {k: network_probs(model, i, rand, weights, x) for k, x in sets.items()}
            )
    rows = []
    for (kind, v), per_member in probs.items():
        for k in range(1, K + 1):
            chosen = per_member[:k]
            cost_s = float(member_time[:k].sum() + vertex_time[:k, :v].sum())
            epochs = k * (spec["epochs"] + v * spec["vertex_epochs"] * epoch_ratio)
            mean = {s: np.mean([p[s].mean(0) for p in chosen], axis=0) for s in sets}
            t = temperature(np.log(np.clip(mean["val"], 1e-12, None)), y_val)
            label = "DE" if kind == "DE" else f"{kind}-{v}v"
            row = {
                "dataset": name,
                "seed": seed,
                "method": label,
                "members": k,
                "cost_s": cost_s,
                "epoch_equivalents": epochs,
                "temperature": t,
            }
            row.update({f"test_{m}": val for m, val in scores(y_test, mean["test"]).items()})
            row.update({f"ts_{m}": val for m, val in scores(y_test, scaled(mean["test"], t)).items()})
            for severity in config["noise_severities"]:
                row.update(
                    {
                        f"noise{severity}_{m}": val
                        for m, val in scores(y_test, mean[f"noise{severity}"]).items()
                    }
                )
            if kind != "DE":
                within = [np.mean(p["test"].argmax(-1) != p["test"].mean(0).argmax(-1)) for p in chosen]
                row["disagreement_within_simplex"] = float(np.mean(within))
            if k > 1 and kind == "DE":
                member_preds = np.stack([p["test"][0].argmax(-1) for p in chosen])
                row["disagreement_between_members"] = float(np.mean(member_preds != mean["test"].argmax(-1)))
            rows.append(row)
    rows.append(
        {
            "dataset": name,
            "seed": seed,
            "method": "_simplex",
            "members": K,
            "epoch_ratio": epoch_ratio,
            "relative_edge_lengths": model.relative_edge_lengths_.mean(0).tolist(),
            "log_volumes": model.log_volumes_.mean(0).tolist(),
        }
    )
    print(f"{name} seed {seed}: vertex epoch / member epoch {epoch_ratio:.2f}", flush=True)
    return rows


def equal_cost(df: pd.DataFrame) -> pd.DataFrame:
    """Each ESPRO point against the deep ensemble with the largest cost not above it (paired, per seed)."""
    out = []
    for (dataset, seed), group in df.groupby(["dataset", "seed"]):
        de = group[group.method == "DE"].sort_values("epoch_equivalents")
        for _, row in group[group.method.str.startswith("ESPRO")].iterrows():
            affordable = de[de.epoch_equivalents <= row.epoch_equivalents + 1e-9].iloc[-1]
            out.append(
                {
                    "dataset": dataset,
                    "seed": seed,
                    "method": row.method,
                    "members": row.members,
                    "epoch_equivalents": row.epoch_equivalents,
                    "de_members": int(affordable.members),
                    "nll_espro": row.test_nll,
                    "nll_de": affordable.test_nll,
                    "ts_nll_espro": row.ts_nll,
                    "ts_nll_de": affordable.ts_nll,
                    "error_espro": row.test_error,
                    "error_de": affordable.test_error,
                }
            )
    return pd.DataFrame(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument(
        "--config", default="quality", help="a file name in benchmarks/configs/, without .json"
    )
    args = parser.parse_args(argv)
    config = json.loads((Path(__file__).resolve().parent / "configs" / f"{args.config}.json").read_text())
    if args.quick:
        config.update(seeds=[0], max_members=2, max_vertices=1, n_samples=2)
        for spec in config["datasets"].values():
            spec.update(epochs=2, vertex_epochs=1)
    names = args.datasets or list(config["datasets"])
    rows = [
        r
        for name in names
        for seed in config["seeds"]
        for r in run_seed(name, config["datasets"][name], config, seed)
    ]
    df = pd.DataFrame(rows)
    simplex_rows = df[df.method == "_simplex"]
    df = df[df.method != "_simplex"]
    metrics = ["test_error", "test_nll", "test_ece", "test_brier", "ts_nll", "ts_ece", "epoch_equivalents"]
    summary = df.groupby(["dataset", "method", "members"])[metrics].agg(["mean", "std"]).reset_index()
    summary.columns = [" ".join(c).strip() for c in summary.columns]
    at_k = summary[summary.members.isin([1, config["max_members"]])]
    costs = equal_cost(df)
    paired = (
        costs.groupby(["dataset", "method", "members"])
        .agg(
            de_members=("de_members", "first"),
            nll_espro=("nll_espro", "mean"),
            nll_de=("nll_de", "mean"),
            nll_wins=("nll_espro", lambda s: int((s < costs.loc[s.index, "nll_de"]).sum())),
            ts_nll_espro=("ts_nll_espro", "mean"),
            ts_nll_de=("ts_nll_de", "mean"),
            ts_nll_wins=("ts_nll_espro", lambda s: int((s < costs.loc[s.index, "ts_nll_de"]).sum())),
            error_espro=("error_espro", "mean"),
            error_de=("error_de", "mean"),
        )
        .reset_index()
    )
    shift_cols = [
        c for c in df.columns if c.startswith("noise") and (c.endswith("_nll") or c.endswith("_ece"))
    ]
    shift = (
        df[df.members == config["max_members"]]
        .groupby(["dataset", "method"])[shift_cols]
        .mean()
        .reset_index()
    )
    diversity = df.groupby(["dataset", "method"])[
        ["disagreement_within_simplex", "disagreement_between_members"]
    ].mean()
    env = environment("cpu")
    fmt = lambda frame: markdown_table(frame.round(4).to_dict("records"), list(frame.columns))  # noqa: E731
    markdown = (
        "# Quality: ESPRO vs deep ensembles (paired, shared members)\n\n"
        + "\n".join(f"- {k}: {v}" for k, v in env.items())
        + f"\n- seeds: {config['seeds']}; settings: benchmarks/configs/{args.config}.json\n\n"
        "## At equal cost (headline)\n\nEach ESPRO configuration against the deep ensemble with the "
        "most members whose cost (epoch-equivalents, vertex epochs weighted by their measured cost) is "
        "not above it; `*_wins`: seeds where ESPRO is lower. `ts_`: after temperature scaling fitted on "
        "the validation split.\n\n"
        + fmt(paired)
        + "\n## At equal members (1 and max), mean and std over seeds\n\n"
        + fmt(at_k)
        + "\n## Under Gaussian input noise (max members; NLL and ECE)\n\n"
        + fmt(shift)
        + "\n## Diversity on the test split\n\n"
        + fmt(diversity.reset_index())
        + "\n## Simplexes\n\n"
        + fmt(
            simplex_rows[["dataset", "seed", "epoch_ratio", "relative_edge_lengths", "log_volumes"]].astype(
                str
            )
        )
    )
    name = args.config + ("-quick" if args.quick else "")
    write_results(name, {"environment": env, "config": config, "rows": rows}, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
