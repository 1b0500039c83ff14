"""The calibration report behind ``skspro report``: three models on digits, clean and shifted.

A single network, a deep ensemble and an ESPRO ensemble are trained on
scikit-learn's 8x8 digits and compared on the held-out split (accuracy, NLL,
ECE, MCE, ACE, Brier, prediction time) and on corrupted copies of it
(:data:`skspro.datasets.CORRUPTIONS` at severities 1-5).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ._base import default_estimator
from ._ensemble import DeepEnsembleClassifier
from ._espro import ESPROClassifier
from .datasets import CORRUPTIONS, corrupt_images
from .metrics import calibration_report, expected_calibration_error, negative_log_likelihood

__all__ = ["comparison_models", "digits_split", "run_report"]

_SPLIT_SEED = 0  # the train/test split is the same for every report
_IMAGE_SHAPE = (8, 8)
_SEVERITIES = (1, 2, 3, 4, 5)

# quick: seconds on 2 CPU cores, for tests; full: about a minute.
_SETTINGS = {
    True: {"max_epochs": 10, "n_members": 2, "n_vertices": 1, "vertex_epochs": 2, "n_samples": 3},
    False: {"max_epochs": 100, "n_members": 5, "n_vertices": 2, "vertex_epochs": 10, "n_samples": 10},
}


def digits_split(random_state: int = _SPLIT_SEED) -> tuple[np.ndarray, ...]:
    """scikit-learn's digits, pixels scaled to [0, 1] (float32), a stratified 70/30 split."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)  # pixel counts 0..16 -> [0, 1]
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=random_state)


def comparison_models(
    template,
    *,
    n_members: int,
    n_vertices: int,
    vertex_epochs: int,
    n_samples: int,
    random_state: int,
    larger_ensemble: int | None = None,
) -> dict[str, object]:
    """A single network, deep ensembles and ESPRO from one template, sharing members.

    ``larger_ensemble`` adds a deep ensemble of that many members (e.g. one
    that costs at least as much to train as ESPRO: the equal-cost baseline).
    """
    models = {
        "single network": DeepEnsembleClassifier(template, n_members=1, random_state=random_state),
        f"deep ensemble ({n_members})": DeepEnsembleClassifier(
            template, n_members=n_members, random_state=random_state
        ),
    }
    if larger_ensemble is not None:
        models[f"deep ensemble ({larger_ensemble})"] = DeepEnsembleClassifier(
            template, n_members=larger_ensemble, random_state=random_state
        )
    models[f"ESPRO ({n_members} x {n_vertices + 1} vertices)"] = ESPROClassifier(
        template,
        n_members=n_members,
        n_vertices=n_vertices,
        vertex_epochs=vertex_epochs,
        n_samples=n_samples,
        random_state=random_state,
    )
    return models


def _models(quick: bool, random_state: int) -> dict[str, object]:
    settings = dict(_SETTINGS[quick])
    template = default_estimator().set_params(max_epochs=settings.pop("max_epochs"))
    return comparison_models(template, random_state=random_state, **settings)


def _shift_results(models: dict, X_test: np.ndarray, y_test: np.ndarray, random_state: int) -> pd.DataFrame:
    """Accuracy, ECE and NLL of every model on the clean (severity 0) and corrupted test sets."""
    test_sets = [("none", 0, X_test)] + [
        (
            corruption,
            severity,
            corrupt_images(
                X_test,
                corruption,
                severity,
                image_shape=_IMAGE_SHAPE,
                value_range=(0.0, 1.0),
                random_state=random_state,
            ),
        )
        for corruption in CORRUPTIONS
        for severity in _SEVERITIES
    ]
    rows = []
    for name, model in models.items():
        for corruption, severity, X in test_sets:
            proba = model.predict_proba(X)
            rows.append(
                {
                    "model": name,
                    "corruption": corruption,
                    "severity": severity,
                    "accuracy": float(np.mean(model.classes_[proba.argmax(axis=1)] == y_test)),
                    "ece": expected_calibration_error(y_test, proba, labels=model.classes_),
                    "nll": negative_log_likelihood(y_test, proba, labels=model.classes_),
                }
            )
    return pd.DataFrame(rows)


def run_report(output_dir: str | Path, *, quick: bool = False, random_state: int = 0) -> pd.DataFrame:
    """Train three models on digits and write their calibration report to ``output_dir``.

    On scikit-learn's digits (pixels scaled to [0, 1], float32; a fixed
    stratified 70/30 split), fits a single network
    (``DeepEnsembleClassifier(n_members=1)``), a deep ensemble and an
    ESPRO ensemble whose members equal the deep ensemble's (same
    ``random_state``), all from :func:`skspro.default_estimator`. Then it
    writes to ``output_dir`` (created if needed):

    * ``calibration_report.csv`` and ``calibration_report.md`` -- the table
      of :func:`skspro.metrics.calibration_report` on the test split, plus
      each model's ``fit_time_s``;
    * ``reliability_diagram.png`` -- the three models on the test split;
    * ``shift_results.csv`` and ``shift_curve.png`` -- accuracy, ECE and NLL
      on the test split corrupted by each of
      :data:`skspro.datasets.CORRUPTIONS` at severities 1-5 (severity 0:
      clean); the figure shows accuracy and ECE, mean and range over
      corruptions.

    Parameters
    ----------
    output_dir : str or pathlib.Path
        Directory for the files; existing files of the same names are
        replaced.
    quick : bool, default=False
        Small models and few epochs (2 members, 10 epochs, 1 vertex of 2
        epochs): seconds on 2 CPU cores, for smoke tests. The default (5
        members of 100 epochs, 2 vertices of 10 epochs, 10 samples per
        simplex) takes about a minute.
    random_state : int, default=0
        Seed of the models and of the corruptions (the split is fixed).

    Returns
    -------
    pandas.DataFrame
        The calibration table, one row per model.
    """
    from matplotlib.figure import Figure  # not pyplot: no global figure state, no GUI backend

    from .plotting import plot_shift_curve, reliability_diagram

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    X_train, X_test, y_train, y_test = digits_split()
    models = _models(quick, random_state)
    fit_times = {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_times[name] = time.perf_counter() - start

    table = calibration_report(models, X_test, y_test)
    table["fit_time_s"] = pd.Series(fit_times)
    table.to_csv(output_dir / "calibration_report.csv")
    # object dtype keeps the integer column out of tabulate's float format
    markdown = table.astype({"n_networks": object}).to_markdown(floatfmt=".4f")
    (output_dir / "calibration_report.md").write_text(markdown + "\n")

    figure = Figure(figsize=(5.5, 5.5))
    probas = {name: model.predict_proba(X_test) for name, model in models.items()}
    reliability_diagram(y_test, probas, ax=figure.subplots())
    figure.savefig(output_dir / "reliability_diagram.png", dpi=120, bbox_inches="tight")

    shift = _shift_results(models, X_test, y_test, random_state)
    shift.to_csv(output_dir / "shift_results.csv", index=False)
    figure = Figure(figsize=(11, 4.5), layout="tight")
    accuracy_ax, ece_ax = figure.subplots(1, 2)
    plot_shift_curve(shift, metric="accuracy", ax=accuracy_ax)
    plot_shift_curve(shift, metric="ece", ax=ece_ax)
    figure.savefig(output_dir / "shift_curve.png", dpi=120)
    return table
