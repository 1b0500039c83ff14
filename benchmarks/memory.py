"""Grid searches over simplex settings with ``memory``: uncached, cold cache, warm cache.

A 3-fold ``GridSearchCV`` (refit included, as a user runs it) over 4 simplex
settings of ``ESPROClassifier(vertex_weight_decay="auto")`` on digits (the
default recipe; "auto" as when these results were measured: the default
"holdout" also trains a probe per fit, whose member the cache stores once per
fold and whose two vertices once per vertex setting), timed four times:
without ``memory``, with an empty cache directory (each member trained once
per fold, each distinct vertex once), again with the same, now warm,
directory, and once more without ``memory`` (the ratios are against the
mean of the two uncached runs). The scores of the four searches must be
identical to the last bit, and their best parameters the same.

Usage::

    python benchmarks/memory.py           # about 5 minutes on 2 CPU cores
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
    params = {"random_state": config["seed"], "memory": memory, "vertex_weight_decay": "auto"}
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


def cache_entries(directory: str) -> tuple[int, float]:
    """The number of entries a cold search stored and the seconds spent
    training them: each entry's header records how long its member or vertex
    took to train. Every distinct network of the search is trained once and
    stored, so no cache can make the search shorter than that."""
    paths = list((Path(directory) / "joblib" / "skspro-members").iterdir())
    headers = [json.loads(torch.load(path, map_location="cpu", weights_only=True)["meta"]) for path in paths]
    seconds = sum(header["seconds"] for header in headers)
    return len(paths), seconds


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
    # One untimed fit first: the first fit of a process pays torch's start-up,
    # which would inflate the first grid's uncached time.
    warm_up = {"vertex_epochs": 1} if args.quick else {}
    ESPROClassifier(random_state=config["seed"], vertex_weight_decay="auto", **warm_up).fit(X[:300], y[:300])
    rows, identical = [], True
    for name, grid in config["grids"].items():
        # The uncached search before and after the cached ones, against their
        # mean: this machine's speed drifts by 10-30 % within minutes.
        before, t_before = run(config, grid, X, y, quick=args.quick)
        with tempfile.TemporaryDirectory(prefix="skspro-memory-") as directory:
            cold, t_cold = run(config, grid, X, y, memory=directory, quick=args.quick)
            warm, t_warm = run(config, grid, X, y, memory=directory, quick=args.quick)
            n_entries, trained = cache_entries(directory)
        after, t_after = run(config, grid, X, y, quick=args.quick)
        t_uncached = (t_before + t_after) / 2
        refit_uncached = (before.refit_time_ + after.refit_time_) / 2
        same = all(same_results(before, other) for other in (cold, warm, after))
        identical &= same
        for label, search, seconds in (
            ("uncached, before", before, t_before),
            ("cold", cold, t_cold),
            ("warm", warm, t_warm),
            ("uncached, after", after, t_after),
        ):
            cached = label in ("cold", "warm")
            rows.append(
                {
                    "grid": name,
                    "run": label,
                    "seconds": seconds,
                    "over_uncached": seconds / t_uncached,
                    "without_refit_s": seconds - search.refit_time_,
                    "without_refit_over_uncached": (seconds - search.refit_time_)
                    / (t_uncached - refit_uncached),
                    "best_params": json.dumps(search.best_params_, sort_keys=True),
                    "best_score": float(search.best_score_),
                    "identical_to_uncached": same if label != "uncached, before" else "",
                    "cache_entries": n_entries if cached else "",
                    "training_s": trained if label == "cold" else "",
                    "training_over_uncached": trained / t_uncached if label == "cold" else "",
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
        "training_s",
        "training_over_uncached",
    ]
    markdown = (
        "# Grid searches with memory: uncached, cold, warm\n\n"
        + "\n".join(f"- {k}: {v}" for k, v in env.items())
        + "\n- search: GridSearchCV(ESPROClassifier(vertex_weight_decay='auto'), "
        + f"cv={config['cv']}, scoring={config['scoring']!r}, "
        + f"n_jobs={config['n_jobs']}), refit included; digits (1797 rows)\n"
        + "- over_uncached: against the mean of the uncached search run before and after the cached "
        + "ones (the machine's speed drifts)\n"
        + f"- scores and best parameters identical in all runs: {identical}\n"
        + "- training_s: the seconds the cold search spent training networks, the sum of the training "
        + "times its cache entries record (each distinct member and vertex, the refit's included, "
        + "trained once): no cache can make the search shorter than that\n\n"
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
