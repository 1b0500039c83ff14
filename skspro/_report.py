"""The calibration report behind ``skspro report``, and the shared fits behind ``skspro demo``.

A single network, deep ensembles and an ESPRO ensemble are trained on
scikit-learn's 8x8 digits -- every network once, the ensembles sharing
members (:func:`fit_shared_models`) -- and compared on the held-out split
(accuracy, NLL, ECE, MCE, ACE, Brier, prediction time, training cost) and on
corrupted copies of it (:data:`skspro.datasets.CORRUPTIONS` at severities
1-5).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ._base import default_estimator
from ._espro import ESPROClassifier
from ._progress import StageProgress
from .datasets import CORRUPTIONS, corrupt_images
from .metrics import (
    CalibrationReport,
    calibration_report,
    expected_calibration_error,
    negative_log_likelihood,
)

__all__ = ["digits_split", "fit_shared_models", "run_report", "training_cost"]

_SPLIT_SEED = 0  # the train/test split is the same for every report
_IMAGE_SHAPE = (8, 8)
_SEVERITIES = (1, 2, 3, 4, 5)

# full: the defaults -- default_estimator() (40 epochs), ESPROClassifier() (4 members, 1 vertex of 10
# epochs, 10 samples each) and DeepEnsembleClassifier() (5 members); quick: smaller, seconds on 2 CPU cores.
_SETTINGS = {
    True: {
        "max_epochs": 10,
        "n_members": 2,
        "larger_ensemble": 3,
        "n_vertices": 1,
        "vertex_epochs": 2,
        "n_samples": 3,
    },
    False: {
        "max_epochs": 40,
        "n_members": 4,
        "larger_ensemble": 5,
        "n_vertices": 1,
        "vertex_epochs": 10,
        "n_samples": 10,
    },
}


def digits_split(random_state: int = _SPLIT_SEED) -> tuple[np.ndarray, ...]:
    """scikit-learn's digits, pixels scaled to [0, 1] (float32), a stratified 70/30 split."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)  # pixel counts 0..16 -> [0, 1]
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=random_state)


def training_cost(model: ESPROClassifier) -> dict[str, float]:
    """Training time and epochs of a fitted ensemble, without start-up overhead.

    ``fit_time_s`` is the sum of its members' and vertices' training times
    (``member_fit_times_`` and ``vertex_fit_times_``: the skorch fits alone,
    not validation, probing the module or drawing sample points) and of the
    ``vertex_weight_decay="holdout"`` probe's (``holdout_fit_time_``), so it
    does not depend on which fit trained a shared member. ``train_epochs``
    counts the epochs in the members' and vertices' skorch histories, not the
    probe's (on half the rows).
    """
    probe = getattr(model, "holdout_fit_time_", 0.0)  # vertex_weight_decay="holdout": its probe's training
    fit_time = float(np.sum(model.member_fit_times_) + np.sum(model.vertex_fit_times_) + probe)
    epochs = sum(len(net.history) for net in model.estimators_) + sum(
        len(history) for histories in model.vertex_histories_ for history in histories
    )
    return {"fit_time_s": fit_time, "train_epochs": int(epochs)}


def fit_shared_models(
    template,
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_members: int,
    larger_ensemble: int,
    n_vertices: int,
    vertex_epochs: int,
    n_samples: int,
    random_state: int,
    progress: StageProgress | None = None,
) -> dict[str, ESPROClassifier]:
    """A single network, two deep ensembles and ESPRO, training every network once.

    With one ``random_state``, member ``i`` of an ensemble does not depend on
    the number of members, and ``ESPROClassifier(n_vertices=0)`` equals
    ``DeepEnsembleClassifier`` bit for bit. So one ``warm_start`` chain
    trains all four: 1 member (the single network), ``n_members`` (the deep
    ensemble whose members ESPRO grows its simplexes around), then a copy of
    it grows ``n_vertices`` vertices per member (ESPRO) while the chain adds
    members up to ``larger_ensemble`` (a deep ensemble of about ESPRO's
    cost). The deep ensembles are ``ESPROClassifier(n_vertices=0)`` objects;
    their predictions are those of ``DeepEnsembleClassifier``.

    Parameters
    ----------
    template : skorch NeuralNetClassifier
        The members' template.
    X, y : ndarray
        Training data.
    n_members, larger_ensemble : int
        Members of the smaller and of the larger deep ensemble.
    n_vertices, vertex_epochs, n_samples : int
        ESPRO's settings.
    random_state : int
    progress : StageProgress, optional
        Told the start of each of the four fits.

    Returns
    -------
    dict of {str: ESPROClassifier}
        ``"single network"``, ``"deep ensemble (n)"``, ``"deep ensemble
        (larger)"``, ``"ESPRO (n x k vertices)"``; fitted, ``warm_start``
        off.
    """
    stage = progress.stage if progress is not None else (lambda name: None)
    chain = ESPROClassifier(
        template,
        n_members=1,
        n_vertices=0,
        vertex_epochs=vertex_epochs,
        n_samples=n_samples,
        random_state=random_state,
        warm_start=True,
    )
    names = {
        "single": "single network",
        "small": f"deep ensemble ({n_members})",
        "large": f"deep ensemble ({larger_ensemble})",
        "espro": f"ESPRO ({n_members} x {n_vertices + 1} vertices)",
    }
    fitted = {}
    stage(f"training the {names['single']}")
    fitted["single"] = copy.deepcopy(chain.fit(X, y))
    stage(f"training the {names['small']}")
    fitted["small"] = copy.deepcopy(chain.set_params(n_members=n_members).fit(X, y))
    stage(f"growing {names['espro']}")
    fitted["espro"] = copy.deepcopy(fitted["small"]).set_params(n_vertices=n_vertices).fit(X, y)
    stage(f"training the {names['large']}")
    fitted["large"] = chain.set_params(n_members=larger_ensemble).fit(X, y)
    return {names[key]: fitted[key].set_params(warm_start=False) for key in names}


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


def _settings_note(quick: bool) -> str:
    settings = _SETTINGS[quick]
    if not quick:
        return (
            f"Models: the defaults -- DeepEnsembleClassifier() ({settings['larger_ensemble']} members) and "
            f"ESPROClassifier() ({settings['n_members']} members, {settings['n_vertices']} vertices of "
            f"{settings['vertex_epochs']} epochs, {settings['n_samples']} samples per simplex), with "
            f"default_estimator() ({settings['max_epochs']} epochs per member); ESPRO's members are the "
            f"{settings['n_members']}-member deep ensemble's."
        )
    return (
        f"Models: --quick settings, smaller than the defaults (members of {settings['max_epochs']} epochs, "
        f"ESPRO {settings['n_members']} members x {settings['n_vertices']} vertex of "
        f"{settings['vertex_epochs']} epochs); run without --quick to compare ESPROClassifier() with "
        "DeepEnsembleClassifier()."
    )


def _write_tables(table: pd.DataFrame, output_dir: Path, note: str) -> None:
    table.to_csv(output_dir / "calibration_report.csv")
    # object dtype keeps the integer columns out of tabulate's float format
    markdown = table.astype({"n_networks": object, "train_epochs": object}).to_markdown(floatfmt=".4f")
    cost = (
        "fit_time_s: seconds of training (members, vertices and ESPRO's holdout probe, no start-up); "
        "train_epochs: epochs of "
        "all members plus vertex epochs; n_networks: networks evaluated per prediction."
    )
    (output_dir / "calibration_report.md").write_text(f"{note}\n\n{markdown}\n\n{cost}\n")


def _write_figures(models: dict, shift: pd.DataFrame, X_test, y_test, output_dir: Path) -> None:
    from matplotlib.figure import Figure  # not pyplot: no global figure state, no GUI backend

    from .plotting import plot_shift_curve, reliability_diagram

    figure = Figure(figsize=(5.5, 5.5))
    probas = {name: model.predict_proba(X_test) for name, model in models.items()}
    reliability_diagram(y_test, probas, ax=figure.subplots())
    figure.savefig(output_dir / "reliability_diagram.png", dpi=120, bbox_inches="tight")
    figure = Figure(figsize=(11, 4.5), layout="tight")
    accuracy_ax, ece_ax = figure.subplots(1, 2)
    plot_shift_curve(shift, metric="accuracy", ax=accuracy_ax)
    plot_shift_curve(shift, metric="ece", ax=ece_ax)
    figure.savefig(output_dir / "shift_curve.png", dpi=120)


def run_report(
    output_dir: str | Path, *, quick: bool = False, random_state: int = 0, verbose: int = 0
) -> pd.DataFrame:
    """Train four models on digits and write their calibration report to ``output_dir``.

    On scikit-learn's digits (pixels scaled to [0, 1], float32; a fixed
    stratified 70/30 split), fits a single network, a 3-member deep
    ensemble, ``ESPROClassifier()`` (whose members are that deep
    ensemble's) and ``DeepEnsembleClassifier()`` (5 members: about ESPRO's
    training cost), all from :func:`skspro.default_estimator` and training
    every network once (:func:`fit_shared_models`). Then it writes to
    ``output_dir`` (created if needed):

    * ``calibration_report.csv`` and ``calibration_report.md`` -- the table
      of :func:`skspro.metrics.calibration_report` on the test split, plus
      each model's training cost, ``fit_time_s`` and ``train_epochs``
      (:func:`training_cost`); the Markdown file says which models were
      compared;
    * ``reliability_diagram.png`` -- the models on the test split;
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
        Smaller models than the defaults (members of 10 epochs; 2 and 3
        members; ESPRO with 1 vertex of 2 epochs), for smoke tests: seconds
        on 2 CPU cores. The default run compares the defaults, in about a
        minute.
    random_state : int, default=0
        Seed of the models and of the corruptions (the split is fixed).
    verbose : int, default=0
        Show a progress bar over the stages (on stderr) when > 0.

    Returns
    -------
    pandas.DataFrame
        The calibration table, one row per model, with ``fit_time_s`` and
        ``train_epochs``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    X_train, X_test, y_train, y_test = digits_split()
    settings = dict(_SETTINGS[quick])
    template = default_estimator().set_params(max_epochs=settings.pop("max_epochs"))
    with StageProgress(7, verbose=verbose, desc="skspro report") as progress:
        models = fit_shared_models(
            template, X_train, y_train, random_state=random_state, progress=progress, **settings
        )
        progress.stage("calibration table")
        table = calibration_report(models, X_test, y_test)
        costs = pd.DataFrame({name: training_cost(model) for name, model in models.items()}).T
        table = CalibrationReport(table.join(costs.astype({"train_epochs": int})))
        _write_tables(table, output_dir, _settings_note(quick))
        progress.stage("corrupted test sets")
        shift = _shift_results(models, X_test, y_test, random_state)
        shift.to_csv(output_dir / "shift_results.csv", index=False)
        progress.stage("figures")
        _write_figures(models, shift, X_test, y_test, output_dir)
    return table
