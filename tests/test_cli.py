"""The ``skspro`` command."""

import subprocess
import sys

import numpy as np
import pytest

from skspro.cli import build_parser, main, run_demo


def test_quick_demo_compares_the_models(capsys):
    assert main(["demo", "--quick", "--quiet", "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    for row in ("single network", "deep ensemble (2)", "deep ensemble (4)", "ESPRO (2 x 2 vertices)"):
        assert row in out
    for column in ("accuracy", "nll", "ece", "brier", "fit_time_s", "networks_at_predict"):
        assert column in out


def test_demo_table_values_are_sane():
    table = run_demo("digits", quick=True, verbose=0)
    assert list(table["networks_at_predict"]) == [1, 2, 4, 8]
    assert ((table["accuracy"] > 0.1) & (table["accuracy"] <= 1)).all()
    assert (table["nll"] > 0).all() and (table["ece"] >= 0).all()


def test_unknown_dataset_and_command_are_refused():
    with pytest.raises(ValueError, match="Unknown dataset"):
        run_demo("cifar", quick=True, verbose=0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train"])


def test_console_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "skspro.cli", "demo", "--help"], capture_output=True, text=True, check=True
    )
    assert "--dataset" in result.stdout


def test_quick_benchmark_measures_training_and_prediction(capsys):
    assert main(["benchmark", "--quick"]) == 0
    out = capsys.readouterr().out
    for row in (
        "vertex epoch / member epoch",
        "fit time of ESPROClassifier()",
        "Python loop over them, batch 32",
    ):
        assert row in out
    from skspro._bench import run_benchmark

    table = run_benchmark("cpu", quick=True)
    assert (table["value"] > 0).all() and np.isfinite(table["value"]).all()
