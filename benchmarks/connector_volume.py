"""SPRO's volume claims on digits: mode-connecting complexes and their volume.

For an MLP and a small BatchNorm CNN on scikit-learn's digits, and for
complexes of 2 and of 4 modes, this script

* trains the modes (a DeepEnsembleClassifier) and connects them with
  SPROConnector, adding connectors one at a time until the volume collapses
  (relative height of a new connector below ``collapse_ratio``) or
  ``max_connectors`` is reached;
* records the training loss of networks sampled from every simplex against
  the modes', the loss barrier of the straight line between modes 0 and 1
  against the path through the complex, and the volume curve.

Usage::

    python benchmarks/connector_volume.py            # a few minutes on 2 CPU cores
    python benchmarks/connector_volume.py --quick    # a smoke run

Settings: benchmarks/configs/connector_volume.json. Results:
benchmarks/results/connector_volume.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, classifier_net, environment, markdown_table, write_results  # noqa: E402

from skspro import DeepEnsembleClassifier, SPROConnector  # noqa: E402
from skspro.modules import MLP, SmallCNN  # noqa: E402


def load(kind: str, seed: int, test_size: float):
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    if kind == "cnn":
        X = X.reshape(-1, 1, 8, 8)
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)


def template(spec: dict):
    if spec["kind"] == "mlp":
        module, params = MLP, {"input_dim": 64, "hidden_units": spec["hidden_units"]}
    else:
        module, params = SmallCNN, {"channels": spec["channels"], "batch_norm": spec["batch_norm"]}
    return classifier_net(module, lr=spec["lr"], max_epochs=spec["epochs"], **params)


def run_one(name: str, spec: dict, n_modes: int, config: dict) -> dict:
    X_train, X_test, y_train, y_test = load(spec["kind"], config["seed"], config["test_size"])
    start = time.perf_counter()
    modes = DeepEnsembleClassifier(template(spec), n_members=n_modes, random_state=config["seed"])
    modes.fit(X_train, y_train)
    connector = SPROConnector(
        FrozenEstimator(modes),
        n_connectors=1,
        connector_epochs=spec["connector_epochs"],
        reg=spec["reg"],
        n_samples=config["n_samples"],
        random_state=config["seed"],
    ).fit(X_train, y_train)
    connector.grow_until_collapse(
        X_train, y_train, max_connectors=config["max_connectors"], collapse_ratio=config["collapse_ratio"]
    )
    paths = connector.path_metrics(X_train, y_train, n_points=config["path_points"])
    line = paths[paths.path == "line"]
    through = paths[paths.path == "complex"]
    test_nll = {
        "modes (deep ensemble)": float(_nll(y_test, modes.predict_proba(X_test))),
        "complex": float(_nll(y_test, connector.predict_proba(X_test))),
    }
    row = {
        "model": name,
        "n_modes": n_modes,
        "connectors": int(connector.n_connectors_),
        "collapse_at": connector.collapse_at_,
        "mode_train_loss": float(connector.mode_train_loss_.mean()),
        "simplex_train_loss_mean": float(connector.simplex_train_loss_.mean()),
        "simplex_train_loss_max": float(connector.simplex_train_loss_.max()),
        "line_max_loss": float(line.loss.max()),
        "complex_path_max_loss": float(through.loss.max()),
        "line_min_accuracy": float(line.accuracy.min()),
        "complex_path_min_accuracy": float(through.accuracy.min()),
        "test_nll_modes": test_nll["modes (deep ensemble)"],
        "test_nll_complex": test_nll["complex"],
        "log_volumes": connector.log_volumes_.tolist(),
        "relative_heights": connector.relative_heights_.tolist(),
        "path_t": line.t.tolist(),
        "path_line_loss": line.loss.tolist(),
        "path_complex_loss": through.loss.tolist(),
        "seconds": time.perf_counter() - start,
    }
    print({k: v for k, v in row.items() if not isinstance(v, list)}, flush=True)
    return row


def _nll(y, proba):
    return -np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    volume_ax, path_ax = figure.subplots(1, 2)
    for row in rows:
        label = f"{row['model']}, {row['n_modes']} modes"
        connectors = np.arange(1, len(row["log_volumes"]) + 1)
        volume_ax.plot(connectors, row["log_volumes"], marker="o", label=label)
        if row["n_modes"] == 2:
            (line,) = path_ax.plot(
                row["path_t"], row["path_line_loss"], ls="--", label=f"{row['model']}: line"
            )
            path_ax.plot(
                row["path_t"],
                row["path_complex_loss"],
                color=line.get_color(),
                label=f"{row['model']}: through the complex",
            )
    volume_ax.set(
        xlabel="connectors", ylabel="log volume of the complex", title="Volume as connectors are added"
    )
    volume_ax.legend(fontsize=8)
    path_ax.set(
        xlabel="t (mode 0 -> mode 1)", ylabel="training loss", yscale="log", title="Loss between two modes"
    )
    path_ax.legend(fontsize=8)
    figure.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke run")
    args = parser.parse_args(argv)
    config = json.loads((Path(__file__).resolve().parent / "configs" / "connector_volume.json").read_text())
    if args.quick:
        config.update(max_connectors=2, path_points=5, n_samples=2, n_modes=[2])
        for spec in config["models"].values():
            spec.update(epochs=2, connector_epochs=1)
    rows = [
        run_one(name, spec, n, config) for name, spec in config["models"].items() for n in config["n_modes"]
    ]
    env = environment("cpu")
    name = "connector_volume" + ("-quick" if args.quick else "")
    columns = [
        "model",
        "n_modes",
        "connectors",
        "collapse_at",
        "mode_train_loss",
        "simplex_train_loss_mean",
        "simplex_train_loss_max",
        "line_max_loss",
        "complex_path_max_loss",
        "test_nll_modes",
        "test_nll_complex",
    ]
    curves = [
        {
            "model": r["model"],
            "n_modes": r["n_modes"],
            "log_volumes": " ".join(f"{v:.2f}" for v in r["log_volumes"]),
            "relative_heights": " ".join(f"{v:.3f}" for v in r["relative_heights"]),
        }
        for r in rows
    ]
    markdown = (
        "# SPRO volume claims on digits\n\n"
        + "\n".join(f"- {k}: {v}" for k, v in env.items())
        + "\n\nLosses are mean training cross-entropies; `line` is the straight segment between "
        "modes 0 and 1, `complex path` goes through the centroid of the connectors.\n\n"
        + markdown_table(rows, columns)
        + "\n## Volume curve (log volume and relative height after each connector)\n\n"
        + markdown_table(curves, ["model", "n_modes", "log_volumes", "relative_heights"])
        + f"\n![volume and paths]({name}.png)\n"
    )
    write_results(name, {"environment": env, "config": config, "results": rows}, markdown)
    plot(rows, RESULTS / f"{name}.png")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
