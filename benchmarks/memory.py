"""Grid searches over simplex settings with ``memory``: uncached, cold cache, warm cache.

A 3-fold ``GridSearchCV`` (refit included, as a user runs it) over 4 simplex
settings of the default ``ESPROClassifier()`` on digits, timed three times:
without ``memory``, with an empty cache directory (each member trained once
per fold, each distinct vertex once), and again with the same, now warm,
directory. The scores of the three searches must be identical to the last
bit, and their best parameters the same.

Usage::

    python benchmarks/memory.py           # about 3 minutes on 2 CPU cores
    python benchmarks/memory.py --quick   # a smoke run

Settings: benchmarks/configs/memory.json (torch threads fixed there).
Results: benchmarks/results/memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, markdown_table, write_results  # noqa: E402

from skspro import ESPROClassifier, default_estimator  # noqa: E402

SCORES = ("mean_test_score", "std_test_score", "rank_test_score")


def run(config: dict, grid: dict, X, y, memory=None, quick=False) -> tuple[GridSearchCV, float]:
    template = default_estimator()
    params = {"random_state": config["seed"], "memory": memory}
    if quick:
        template.set_params(max_epochs=2, module__hidden_units=(32,))
        params.update(vertex_epochs=1, n_samples=2)
    search = GridSearchCV(
        ESPROClassifier(template, **params),
        grid,
        cv=config["cv"],
        scoring=config["scoring"],
        n_jobs=config["n_jobs"],
    )
    start = time.perf_counter()
    search.fit(X, y)
    return search, time.perf_counter() - start


def same_results(a: GridSearchCV, b: GridSearchCV) -> bool:
    keys = [k for k in a.cv_results_ if k.startswith("split") and k.endswith("_test_score")] + list(SCORES)
    return a.best_params_ == b.best_params_ and all(
        np.array_equal(a.cv_results_[k], b.cv_results_[k]) for k in keys
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    config = json.loads((Path(__file__).resolve().parent / "configs" / "memory.json").read_text())
    if args.quick:
        config["cv"] = 2
    torch.set_num_threads(config["torch_threads"])
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rows, identical = [], True
    for name, grid in config["grids"].items():
        uncached, t_uncached = run(config, grid, X, y, quick=args.quick)
        with tempfile.TemporaryDirectory(prefix="skspro-memory-") as directory:
            cold, t_cold = run(config, grid, X, y, memory=directory, quick=args.quick)
            warm, t_warm = run(config, grid, X, y, memory=directory, quick=args.quick)
            n_entries = len(list((Path(directory) / "joblib" / "skspro-members").iterdir()))
        same = same_results(uncached, cold) and same_results(uncached, warm)
        identical &= same
        for label, search, seconds in (
            ("uncached", uncached, t_uncached),
            ("cold", cold, t_cold),
            ("warm", warm, t_warm),
        ):
            rows.append(
                {
                    "grid": name,
                    "run": label,
                    "seconds": seconds,
                    "over_uncached": seconds / t_uncached,
                    "without_refit_s": seconds - search.refit_time_,
                    "without_refit_over_uncached": (seconds - search.refit_time_)
                    / (t_uncached - uncached.refit_time_),
                    "best_params": json.dumps(search.best_params_, sort_keys=True),
                    "best_score": float(search.best_score_),
                    "identical_to_uncached": same if label != "uncached" else "",
                    "cache_entries": n_entries if label != "uncached" else "",
                }
            )
            print(rows[-1], flush=True)
    env = environment("cpu")
    columns = [
        "grid",
        "run",
        "seconds",
        "over_uncached",
        "without_refit_s",
        "without_refit_over_uncached",
        "best_params",
        "best_score",
        "identical_to_uncached",
        "cache_entries",
    ]
    markdown = (
        "# Grid searches with memory: uncached, cold, warm\n\n"
        + "\n".join(f"- {k}: {v}" for k, v in env.items())
        + f"\n- search: GridSearchCV(ESPROClassifier(), cv={config['cv']}, scoring={config['scoring']!r}, "
        + f"n_jobs={config['n_jobs']}), refit included; digits (1797 rows)\n"
        + f"- scores and best parameters identical in all runs: {identical}\n\n"
        + markdown_table(rows, columns)
    )
    payload = {
        "environment": env,
        "config": config,
        "quick": args.quick,
        "runs": rows,
        "identical": identical,
    }
    name = "memory" + ("-quick" if args.quick else "")
    paths = write_results(name, payload, markdown)
    print(markdown)
    print("written:", *paths)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
