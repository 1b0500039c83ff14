"""Speed of the loss-surface grid against the same number of plain forwards.

A grid of ``n_grid ** 2`` points over the plane through three weight vectors
is ``n_grid ** 2`` networks. :func:`skspro.plotting.loss_surface_grid`
evaluates them with the vectorised forward (networks combined from the
three vectors chunk by chunk, :func:`skspro.simplex.forward_networks`); the
reference is what a user without skspro writes: one ordinary module per
grid point, already built, and a Python loop of ``cross_entropy(module(X), y)``.
The target is a ratio of at most 1.5 (grid time over loop time); the loop's
time excludes building the modules, the grid's includes everything.

Usage::

    python benchmarks/loss_surface_speed.py           # n_grid 21 (441 networks)
    python benchmarks/loss_surface_speed.py --quick   # n_grid 5, a smoke run

Results: benchmarks/results/loss_surface_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import classifier_net, environment, markdown_table, median_time, write_results  # noqa: E402


def fitted(kind: str):
    from sklearn.datasets import load_digits

    from skspro import ESPROClassifier, default_estimator
    from skspro.modules import SmallCNN

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    template = default_estimator().set_params(max_epochs=2)
    if kind == "cnn":
        X = X.reshape(-1, 1, 8, 8)
        template = classifier_net(SmallCNN, lr=1e-3, max_epochs=2, device="cpu", batch_norm=False)
    model = ESPROClassifier(template, n_members=1, n_vertices=2, vertex_epochs=1, n_samples=2, random_state=0)
    return model.fit(X, y), X, y


def plain_modules(model, surface) -> list[torch.nn.Module]:
    simplex = model.simplexes_[0]
    weights = torch.as_tensor(surface.barycentric.reshape(-1, 3), dtype=torch.float32)
    params = simplex.combine(weights)
    modules = []
    for s in range(len(weights)):
        net = copy.deepcopy(model.networks_.module).eval()
        with torch.no_grad():
            for name, value in params.items():
                net.get_parameter(name).copy_(value[s])
        modules.append(net)
    return modules


def main(argv=None) -> int:
    from skspro.plotting import loss_surface_grid

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n-grid", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_grid = 5 if args.quick else args.n_grid
    rows = []
    for kind in ("mlp", "cnn"):
        model, X, y = fitted(kind)
        surface = loss_surface_grid(model, X, y, n_grid=n_grid)
        modules = plain_modules(model, surface)
        x, target = torch.as_tensor(X), torch.as_tensor(y)

        def loop(modules=modules, x=x, target=target):
            with torch.no_grad():
                return [float(torch.nn.functional.cross_entropy(m(x), target)) for m in modules]

        def grid(model=model, X=X, y=y):
            return loss_surface_grid(model, X, y, n_grid=n_grid)

        losses = np.array(loop()).reshape(n_grid, n_grid)
        np.testing.assert_allclose(surface.loss, losses, rtol=1e-4)  # the same numbers
        repeats = 1 if args.quick else 3
        grid_s = median_time(grid, "cpu", repeats=repeats)
        loop_s = median_time(loop, "cpu", repeats=repeats)
        rows.append(
            {
                "module": {"mlp": "MLP 128x128", "cnn": "SmallCNN (no BatchNorm)"}[kind],
                "rows": len(X),
                "grid_points": n_grid**2,
                "grid_s": grid_s,
                "plain_forwards_s": loop_s,
                "ratio": grid_s / loop_s,
                "target": "<= 1.5",
            }
        )
        print(rows[-1], flush=True)
    env = environment("cpu")
    columns = ["module", "rows", "grid_points", "grid_s", "plain_forwards_s", "ratio", "target"]
    markdown = (
        "# Loss-surface grid against the same number of plain forwards\n\n"
        f"`{env['command']}`, {env['date']}, torch {env['torch']}, {env['torch_threads']} threads, "
        f"{env['cpu']}, commit {env['commit']}.\n\n"
        "digits (all 1797 rows), the grid over the first member's simplex; medians of 3 runs. `grid_s`: "
        "`loss_surface_grid` end to end; `plain_forwards_s`: a loop of `cross_entropy(module(X), y)` over "
        "ready-built modules, one per grid point (the same numbers, checked).\n\n"
        + markdown_table(rows, columns)
    )
    print(markdown)
    if not args.quick:
        write_results("loss_surface_speed", {"environment": env, "rows": rows}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
