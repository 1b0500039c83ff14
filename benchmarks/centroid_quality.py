"""Quality of ESPRO's single-network path (the simplexes' centroids) against members and the full ensemble.

On digits (MLP 128x128 and the same MLP with BatchNorm), for a few seeds:
ESPRO with 3 members and 2 vertices each, predicting with

* every single member (mean over members), the members' deep ensemble (the
  vertex-0 networks, 3 forwards),
* every single centroid (mean), the centroids' ensemble (3 forwards),
  with BatchNorm statistics averaged from the sampled networks (default)
  or re-estimated on the training data,
* the full ESPRO ensemble (3 x n_samples forwards).

Usage::

    python benchmarks/centroid_quality.py            # 3 seeds
    python benchmarks/centroid_quality.py --quick    # one seed, fewer epochs

Results: benchmarks/results/centroid_quality.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, markdown_table, write_results  # noqa: E402


def run(seed: int, batch_norm: bool, quick: bool) -> list[dict]:
    from sklearn.datasets import load_digits
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.model_selection import train_test_split

    from skspro import ESPROClassifier, default_estimator

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=seed, stratify=y)
    template = default_estimator().set_params(
        max_epochs=10 if quick else 40, module__batch_norm=batch_norm, module__dropout=0.0
    )
    model = ESPROClassifier(
        template, n_members=3, n_vertices=2, vertex_epochs=3 if quick else 10, n_samples=10, random_state=seed
    ).fit(X_train, y_train)

    def score(name, proba, forwards):
        return {
            "model": "MLP+BN" if batch_norm else "MLP",
            "seed": seed,
            "predictor": name,
            "forwards": forwards,
            "accuracy": accuracy_score(y_test, model.classes_[proba.argmax(1)]),
            "nll": log_loss(y_test, np.clip(proba, 1e-12, 1), labels=model.classes_),
        }

    x = torch.as_tensor(X_test)
    with torch.no_grad():  # the members: vertex 0 of each simplex, with their own statistics
        member_networks = [
            torch.softmax(model.estimators_[i].module_.eval()(x).double(), -1).numpy() for i in range(3)
        ]
    centroids = model.centroid_networks().predict_proba_networks(x)
    exact = model.centroid_networks(norm_X=X_train).predict_proba_networks(x)
    rows = []
    singles = [score("single member", p, 1) for p in member_networks]
    rows.append(_mean(singles, "single member (mean of 3)"))
    rows.append(score("members' deep ensemble", np.mean(member_networks, 0), 3))
    rows.append(_mean([score("single centroid", p, 1) for p in centroids], "single centroid (mean of 3)"))
    rows.append(score("centroids' ensemble", centroids.mean(0), 3))
    if batch_norm:
        rows.append(score("centroids' ensemble, BN re-estimated", exact.mean(0), 3))
    rows.append(score("full ESPRO ensemble", model.predict_proba(X_test), model.n_networks_))
    return rows


def _mean(rows: list[dict], name: str) -> dict:
    out = dict(rows[0], predictor=name)
    for key in ("accuracy", "nll"):
        out[key] = float(np.mean([r[key] for r in rows]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    start = time.perf_counter()
    rows = []
    for batch_norm in (False, True):
        for seed in range(1 if args.quick else args.seeds):
            rows += run(seed, batch_norm, args.quick)
            print(
                f"done: batch_norm={batch_norm} seed={seed} ({time.perf_counter() - start:.0f} s)", flush=True
            )
    summary = {}
    for r in rows:
        key = (r["model"], r["predictor"], r["forwards"])
        summary.setdefault(key, []).append(r)
    table = [
        {
            "model": k[0],
            "predictor": k[1],
            "forwards": k[2],
            "accuracy": float(np.mean([r["accuracy"] for r in v])),
            "nll": float(np.mean([r["nll"] for r in v])),
            "nll_sd": float(np.std([r["nll"] for r in v])),
            "seeds": len(v),
        }
        for k, v in summary.items()
    ]
    columns = ["model", "predictor", "forwards", "accuracy", "nll", "nll_sd", "seeds"]
    env = environment("cpu")
    markdown = (
        "# ESPRO's centroid path against members and the full ensemble\n\n"
        f"`{env['command']}`, {env['date']}, torch {env['torch']}, {env['torch_threads']} threads, "
        f"commit {env['commit']}.\n\n"
        "digits, half for training (stratified, per seed); MLP 128x128 (40 epochs per member), "
        "ESPRO 3 members "
        "x 2 vertices (10 epochs each), 10 sampled networks per simplex. Means over seeds; `forwards`: "
        "networks evaluated per prediction.\n\n" + markdown_table(table, columns)
    )
    print(markdown)
    if not args.quick:
        write_results("centroid_quality", {"environment": env, "rows": rows, "summary": table}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
