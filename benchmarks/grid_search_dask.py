"""Worked example: GridSearchCV over ESPRO hyper-parameters on a Dask cluster.

Scores every candidate by NLL and ECE (refit on NLL), once with ``n_jobs=1``
in this process and once on a ``dask.distributed.LocalCluster`` (worker
processes on this machine, loopback only) through joblib's Dask backend, and
records both timings, the best parameters and scores of both runs.

Usage::

    python benchmarks/grid_search_dask.py           # a few minutes on 2 CPU cores
    python benchmarks/grid_search_dask.py --quick   # a smoke run

Settings: benchmarks/configs/grid_search_dask.json. Results:
benchmarks/results/grid_search_dask.{json,md}. Needs ``pip install "skspro[dask]"``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from joblib import parallel_config
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, markdown_table, write_results  # noqa: E402

from skspro import ESPROClassifier, default_estimator  # noqa: E402
from skspro.metrics import ece_scorer, expected_calibration_error, negative_log_likelihood  # noqa: E402


def search(config: dict) -> GridSearchCV:
    t = config["template"]
    template = default_estimator().set_params(
        max_epochs=t["max_epochs"], module__hidden_units=tuple(t["hidden_units"]), lr=t["lr"]
    )
    return GridSearchCV(
        ESPROClassifier(template, random_state=config["seed"], **config["estimator"]),
        config["grid"],
        cv=config["cv"],
        scoring={"nll": "neg_log_loss", "ece": ece_scorer},
        refit="nll",
        n_jobs=None,
    )


def summary(name: str, grid: GridSearchCV, seconds: float, X_test, y_test) -> dict:
    proba = grid.predict_proba(X_test)
    return {
        "run": name,
        "seconds": seconds,
        "best_params": json.dumps(grid.best_params_, sort_keys=True),
        "best_cv_nll": -grid.best_score_,
        "best_cv_ece": -grid.cv_results_["mean_test_ece"][grid.best_index_],
        "test_nll": negative_log_likelihood(y_test, proba),
        "test_ece": expected_calibration_error(y_test, proba),
    }


def main(argv=None) -> int:
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    config = json.loads((Path(__file__).resolve().parent / "configs" / "grid_search_dask.json").read_text())
    if args.quick:
        config["template"]["max_epochs"] = 2
        config["estimator"].update(vertex_epochs=1, n_samples=2)
        config["grid"] = {"n_vertices": [0, 1], "reg": [1e-4], "estimator__lr": [1e-3]}
        config["cv"] = 2
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=config["test_size"], random_state=config["seed"], stratify=y
    )
    start = time.perf_counter()
    local = search(config).fit(X_train, y_train)
    rows = [summary("n_jobs=1, this process", local, time.perf_counter() - start, X_test, y_test)]
    print(rows[-1], flush=True)
    with (
        LocalCluster(
            n_workers=config["n_workers"],
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster),
    ):
        start = time.perf_counter()
        with parallel_config(backend="dask"):
            distributed = search(config).fit(X_train, y_train)
        rows.append(
            summary(
                f"Dask LocalCluster, {config['n_workers']} workers",
                distributed,
                time.perf_counter() - start,
                X_test,
                y_test,
            )
        )
    print(rows[-1], flush=True)
    # The in-process run uses all torch threads, the workers one each: float
    # reductions round differently, so scores agree to rounding, not bit for bit.
    local_nll, dask_nll = local.cv_results_["mean_test_nll"], distributed.cv_results_["mean_test_nll"]
    max_rel_diff = float(np.max(np.abs(local_nll - dask_nll) / np.abs(local_nll)))
    same = bool(local.best_params_ == distributed.best_params_ and max_rel_diff < 1e-2)
    env = environment("cpu")
    candidates = [
        {"params": json.dumps(p, sort_keys=True), "cv_nll": -n, "cv_ece": -e}
        for p, n, e in zip(
            local.cv_results_["params"],
            local.cv_results_["mean_test_nll"],
            local.cv_results_["mean_test_ece"],
        )
    ]
    markdown = (
        "# GridSearchCV over ESPRO on a Dask LocalCluster\n\n"
        + "\n".join(f"- {k}: {v}" for k, v in env.items())
        + f"\n- candidates x folds: {len(candidates)} x {config['cv']}\n"
        + f"- largest relative difference of a candidate's CV NLL between the runs: {max_rel_diff:.2g}\n"
        + f"- same best candidate: {local.best_params_ == distributed.best_params_}\n"
        + f"- speed-up: {rows[0]['seconds'] / rows[1]['seconds']:.2f}x\n\n"
        + markdown_table(
            rows, ["run", "seconds", "best_params", "best_cv_nll", "best_cv_ece", "test_nll", "test_ece"]
        )
        + "\n## Every candidate (n_jobs=1 run)\n\n"
        + markdown_table(candidates, ["params", "cv_nll", "cv_ece"])
    )
    name = "grid_search_dask" + ("-quick" if args.quick else "")
    write_results(
        name,
        {
            "environment": env,
            "config": config,
            "runs": rows,
            "max_relative_cv_nll_difference": max_rel_diff,
            "same_best_params": local.best_params_ == distributed.best_params_,
            "candidates": candidates,
        },
        markdown,
    )
    print(markdown)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
