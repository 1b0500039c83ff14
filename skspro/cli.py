"""The ``skspro`` command: ``skspro demo`` and ``skspro report``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

__all__ = ["main", "run_demo"]


def _load_demo_data(dataset: str, random_state: int):
    """A fixed train/test split of data that needs no download."""
    from sklearn.model_selection import train_test_split

    from ._report import digits_split

    if dataset == "digits":
        return digits_split(random_state)
    if dataset == "mnist1d":
        from .datasets import make_mnist1d

        X, y = make_mnist1d(n_samples=4000, random_state=random_state)
        return train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=random_state, stratify=y)
    raise ValueError(f"Unknown dataset {dataset!r}; choose 'mnist1d' or 'digits'.")


def run_demo(dataset: str = "mnist1d", *, quick: bool = False, random_state: int = 0, verbose: int = 1):
    """Train a single network, two deep ensembles and ESPRO; return the comparison.

    The deep ensembles have as many members as ESPRO and two more (which
    costs at least as much to train as ESPRO: the equal-cost baseline); ESPRO's
    members are the first deep ensemble's.

    Parameters
    ----------
    dataset : {"mnist1d", "digits"}, default="mnist1d"
        ``"mnist1d"`` is generated locally by the ``mnist1d`` package (one
        network overfits it, so ensembling matters); ``"digits"`` is
        scikit-learn's 8x8 digits (nearly solved by one MLP).
    quick : bool, default=False
        Tiny settings (seconds), for smoke tests.
    random_state : int, default=0
        Seeds the split and all models.
    verbose : int, default=1
        Print progress lines while training.

    Returns
    -------
    pandas.DataFrame
        One row per model: accuracy, NLL, ECE, Brier score, fit time, training
        epochs (members plus vertices), networks evaluated at predict time.
    """
    import pandas as pd

    from . import default_estimator
    from ._report import comparison_models
    from .metrics import brier_score, expected_calibration_error, negative_log_likelihood

    X_train, X_test, y_train, y_test = _load_demo_data(dataset, random_state)
    epochs = 3 if quick else 60
    n_members = 2 if quick else 3
    vertex_epochs = 1 if quick else 10
    n_vertices = 1 if quick else 2
    template = default_estimator().set_params(max_epochs=epochs, module__hidden_units=(256, 256), lr=2e-3)
    models = comparison_models(
        template,
        n_members=n_members,
        n_vertices=n_vertices,
        vertex_epochs=vertex_epochs,
        n_samples=4 if quick else 10,
        random_state=random_state,
        # Costs at least as much to train as ESPRO: a vertex epoch costs about
        # 1.1-1.4 member epochs, so ESPRO's 3 x (60 + 2 x 10) epochs are worth
        # 3.9-4.4 members.
        larger_ensemble=n_members + 2,
    )
    if verbose:
        print(
            f"skspro demo on {dataset}: {len(X_train)} training and {len(X_test)} test rows, "
            f"{X_train.shape[1]} features, {len(np.unique(y_train))} classes",
            flush=True,
        )
    rows = []
    for name, model in models.items():
        if verbose:
            print(f"training {name} ...", flush=True)
        model.set_params(verbose=verbose)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
        proba = model.predict_proba(X_test)
        n_vertices_fitted = getattr(model, "n_vertices", 0)
        rows.append(
            {
                "model": name,
                "accuracy": float(np.mean(model.classes_[proba.argmax(1)] == y_test)),
                "nll": negative_log_likelihood(y_test, proba),
                "ece": expected_calibration_error(y_test, proba),
                "brier": brier_score(y_test, proba),
                "fit_time_s": fit_time,
                "train_epochs": model.n_members * (epochs + n_vertices_fitted * vertex_epochs),
                "networks_at_predict": model.n_networks_,
            }
        )
    return pd.DataFrame(rows).set_index("model")


def _demo(args: argparse.Namespace) -> int:
    table = run_demo(args.dataset, quick=args.quick, random_state=args.seed, verbose=0 if args.quiet else 1)
    print()
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(
        "\nnll: negative log-likelihood (lower is better); ece: expected calibration error, "
        "15 equal-width bins; brier: multiclass Brier score; train_epochs: epochs of all members "
        "plus vertex epochs."
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from ._report import run_report

    table = run_report(args.output, quick=args.quick, random_state=args.seed)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\nTables and figures written to {args.output}")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from ._bench import run_benchmark

    table = run_benchmark(args.device, quick=args.quick, random_state=args.seed)
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(
        "\nMeasured on this machine with the default estimators on digits. The full benchmarks "
        "(quality at equal cost, GPU numbers) are in the repository's benchmarks/ folder."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skspro`` command."""
    parser = argparse.ArgumentParser(
        prog="skspro", description="Loss-surface simplex ensembles for scikit-learn."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="train a single network, a deep ensemble and ESPRO; print the comparison"
    )
    demo.add_argument("--dataset", choices=["mnist1d", "digits"], default="mnist1d")
    demo.add_argument("--quick", action="store_true", help="tiny settings, for a smoke test")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.set_defaults(handler=_demo)
    report = sub.add_parser("report", help="calibration report on digits: table and figures as files")
    report.add_argument("--output", default="skspro-report", help="folder for the files (created)")
    report.add_argument("--quick", action="store_true")
    report.add_argument("--seed", type=int, default=0)
    report.set_defaults(handler=_report)
    bench = sub.add_parser(
        "benchmark",
        help="time ESPROClassifier() vs DeepEnsembleClassifier() and prediction on this machine",
    )
    bench.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    bench.add_argument("--quick", action="store_true", help="few epochs: seconds, noisy ratios")
    bench.add_argument("--seed", type=int, default=0)
    bench.set_defaults(handler=_benchmark)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skspro`` command."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
