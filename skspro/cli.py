"""The ``skspro`` command: ``skspro demo``, ``skspro report`` and ``skspro benchmark``.

Only :mod:`argparse` is imported up front: numpy, scikit-learn and PyTorch
load inside the subcommands, so ``skspro --help`` and ``skspro --version``
answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["build_parser", "demo_table", "demo_template", "fit_demo_models", "main", "run_demo"]

_INTERRUPTED = 130  # the shell's status for a command ended by SIGINT (128 + 2)

# quick: a smoke run (seconds); full: the README's table.
_DEMO_SETTINGS = {
    True: {
        "max_epochs": 10,
        "n_members": 2,
        "larger_ensemble": 4,
        "n_vertices": 1,
        "vertex_epochs": 2,
        "n_samples": 4,
        "mnist1d_rows": 1500,
    },
    False: {
        "max_epochs": 60,
        "n_members": 4,
        "larger_ensemble": 5,
        "n_vertices": 1,
        "vertex_epochs": 10,
        "n_samples": 10,
        "mnist1d_rows": 4000,
    },
}


def _load_demo_data(dataset: str, random_state: int, mnist1d_rows: int = 4000):
    """A fixed train/test split of data that needs no download."""
    if dataset == "digits":
        from ._report import digits_split

        return digits_split(random_state)
    if dataset == "mnist1d":
        import numpy as np
        from sklearn.model_selection import train_test_split

        from .datasets import make_mnist1d

        X, y = make_mnist1d(n_samples=mnist1d_rows, random_state=random_state)
        return train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=random_state, stratify=y)
    raise ValueError(f"Unknown dataset {dataset!r}; choose 'mnist1d' or 'digits'.")


def demo_template(max_epochs: int):
    """The members' template: :func:`skspro.default_estimator` with a wider MLP and a larger step."""
    from . import default_estimator

    return default_estimator().set_params(max_epochs=max_epochs, module__hidden_units=(256, 256), lr=2e-3)


def fit_demo_models(
    dataset: str = "mnist1d", *, quick: bool = False, random_state: int = 0, verbose: int = 1
) -> tuple[dict, tuple]:
    """The demo's split and its four fitted models (every network trained once).

    Parameters
    ----------
    dataset, quick, random_state, verbose
        As in :func:`run_demo`.

    Returns
    -------
    models : dict of {str: estimator}
        See :func:`skspro._report.fit_shared_models`.
    split : tuple of ndarray
        ``X_train, X_test, y_train, y_test``.
    """
    from ._progress import StageProgress
    from ._report import fit_shared_models

    settings = dict(_DEMO_SETTINGS[quick])
    split = _load_demo_data(dataset, random_state, settings.pop("mnist1d_rows"))
    X_train, _, y_train, _ = split
    template = demo_template(settings.pop("max_epochs"))
    with StageProgress(4, verbose=verbose, desc=f"skspro demo on {dataset}") as progress:
        models = fit_shared_models(
            template, X_train, y_train, random_state=random_state, progress=progress, **settings
        )
    return models, split


def demo_table(models: dict, X_test, y_test):
    """One row per model: accuracy, NLL, ECE, Brier on the test split, and its training cost."""
    import numpy as np
    import pandas as pd

    from ._report import training_cost
    from .metrics import brier_score, expected_calibration_error, negative_log_likelihood

    rows = []
    for name, model in models.items():
        proba = model.predict_proba(X_test)
        rows.append(
            {
                "model": name,
                "accuracy": float(np.mean(model.classes_[proba.argmax(1)] == y_test)),
                "nll": negative_log_likelihood(y_test, proba, labels=model.classes_),
                "ece": expected_calibration_error(y_test, proba, labels=model.classes_),
                "brier": brier_score(y_test, proba, labels=model.classes_),
                **training_cost(model),
                "networks_at_predict": model.n_networks_,
            }
        )
    return pd.DataFrame(rows).set_index("model")


def run_demo(dataset: str = "mnist1d", *, quick: bool = False, random_state: int = 0, verbose: int = 1):
    """Train a single network, two deep ensembles and ESPRO; return the comparison.

    ESPRO's members are the smaller deep ensemble's, and the larger deep
    ensemble (one more member) is the baseline of about ESPRO's training
    cost; the decay probe of ESPRO's default makes ESPRO about a tenth
    dearer on an MLP, and the table shows both costs. Every network is trained once (the ensembles
    share members, see :func:`skspro._report.fit_shared_models`).

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
        Show a progress bar over the fits (on stderr) when > 0.

    Returns
    -------
    pandas.DataFrame
        One row per model: accuracy, NLL, ECE, Brier score on the test
        split; ``fit_time_s`` (training time of its members and vertices,
        and of ESPRO's decay probe, without start-up), ``train_epochs`` (epochs of its members plus
        vertex epochs), networks evaluated at predict time.
    """
    models, (_, X_test, _, y_test) = fit_demo_models(
        dataset, quick=quick, random_state=random_state, verbose=verbose
    )
    return demo_table(models, X_test, y_test)


def _demo(args: argparse.Namespace) -> int:
    models, (X_train, X_test, y_train, y_test) = fit_demo_models(
        args.dataset, quick=args.quick, random_state=args.seed, verbose=0 if args.quiet else 1
    )
    table = demo_table(models, X_test, y_test)
    print(
        f"skspro demo on {args.dataset}: {len(X_train)} training and {len(X_test)} test rows, "
        f"{X_train.shape[1]} features, {len(set(y_train.tolist()))} classes\n"
    )
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(
        "\nnll: negative log-likelihood (lower is better); ece: expected calibration error, "
        "15 equal-width bins; brier: multiclass Brier score; fit_time_s: seconds of training "
        "(members, vertices and ESPRO's decay probe, no start-up); train_epochs: epochs of all members "
        "plus vertex epochs (not the probe's, on half the rows)."
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from ._report import _settings_note, run_report

    table = run_report(args.output, quick=args.quick, random_state=args.seed, verbose=0 if args.quiet else 1)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\n{_settings_note(args.quick)}\nTables and figures written to {args.output}")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from ._bench import run_benchmark

    verbose = 0 if args.quiet else 1
    table = run_benchmark(args.device, quick=args.quick, random_state=args.seed, verbose=verbose)
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(
        "\nMeasured on this machine with the default estimators on digits. The full benchmarks "
        "(quality at equal cost, GPU numbers) are in the repository's benchmarks/ folder."
    )
    return 0


def _common_options(parser: argparse.ArgumentParser, quick_help: str, seed_help: str) -> None:
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skspro`` command."""
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="skspro",
        description="Loss-surface simplex ensembles for scikit-learn.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"skspro {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train a single network, two deep ensembles and ESPRO; print the comparison",
        formatter_class=formatter,
    )
    demo.add_argument(
        "--dataset", choices=["mnist1d", "digits"], default="mnist1d", help="data (both need no download)"
    )
    _common_options(demo, "tiny settings, for a smoke test (seconds)", "seed of the split and of the models")
    demo.set_defaults(handler=_demo)
    report = sub.add_parser(
        "report", help="calibration report on digits: table and figures as files", formatter_class=formatter
    )
    report.add_argument("--output", default="skspro-report", help="folder for the files (created)")
    _common_options(
        report,
        "smaller models than the defaults, for a smoke test (seconds)",
        "seed of the models and of the corruptions (the split is fixed)",
    )
    report.set_defaults(handler=_report)
    bench = sub.add_parser(
        "benchmark",
        help="time ESPROClassifier() vs DeepEnsembleClassifier() and prediction on this machine",
        formatter_class=formatter,
    )
    bench.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    _common_options(bench, "few epochs: seconds, noisy ratios", "seed of the models")
    bench.set_defaults(handler=_benchmark)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skspro`` command; returns its exit status (130 when interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("skspro: interrupted", file=sys.stderr)
        return _INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
