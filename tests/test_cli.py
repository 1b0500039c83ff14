"""The ``skspro`` command: fast help, exit codes, and tables checked against the models themselves."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import log_loss

from skspro import DeepEnsembleClassifier, ESPROClassifier, cli
from skspro._bench import speed_reading
from skspro.cli import build_parser, demo_table, demo_template, fit_demo_models, main, run_demo
from skspro.metrics import brier_score, expected_calibration_error

QUICK = cli._DEMO_SETTINGS[True]


def test_help_and_version_do_not_load_the_heavy_libraries():
    # What makes `skspro --help` answer at once: the command imports neither torch nor numpy to parse.
    script = (
        "import sys, contextlib, io\n"
        "from skspro.cli import main\n"
        "for argv in (['--help'], ['--version'], ['demo', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'sklearn', 'skorch', 'pandas') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    version = subprocess.run(
        [sys.executable, "-m", "skspro.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == "skspro 0.1.0"


def test_every_option_has_help_and_shows_its_default():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if a.dest == "command"]
    assert set(subparsers.choices) == {"demo", "report", "benchmark"}
    for name, sub in subparsers.choices.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, (name, action.dest)
            assert f"(default: {action.default})" in text, (name, action.dest)


def test_interrupt_ends_with_one_line_and_status_130(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "fit_demo_models", interrupted)
    assert main(["demo", "--quick", "--quiet"]) == 130
    out, err = capsys.readouterr()
    assert out == "" and err == "skspro: interrupted\n"


def test_unknown_dataset_and_command_are_refused():
    with pytest.raises(ValueError, match="Unknown dataset"):
        run_demo("cifar", quick=True, verbose=0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train"])


@pytest.fixture(scope="module")
def quick_demo():
    return fit_demo_models("digits", quick=True, random_state=0, verbose=0)


def test_demo_table_matches_the_models_own_scores(quick_demo):
    models, (_, X_test, _, y_test) = quick_demo
    table = demo_table(models, X_test, y_test)
    names = ["single network", "deep ensemble (2)", "deep ensemble (4)", "ESPRO (2 x 2 vertices)"]
    assert list(table.index) == names
    for name, model in models.items():
        proba = model.predict_proba(X_test)
        row = table.loc[name]
        assert row["accuracy"] == pytest.approx(model.score(X_test, y_test))
        assert row["nll"] == pytest.approx(log_loss(y_test, proba, labels=model.classes_))
        assert row["ece"] == pytest.approx(expected_calibration_error(y_test, proba))
        assert row["brier"] == pytest.approx(brier_score(y_test, proba))
    epochs, vertex_epochs = QUICK["max_epochs"], QUICK["vertex_epochs"]
    assert table["train_epochs"].tolist() == [epochs, 2 * epochs, 4 * epochs, 2 * (epochs + vertex_epochs)]
    assert table["networks_at_predict"].tolist() == [1, 2, 4, 2 * QUICK["n_samples"]]
    # every network is trained once: ESPRO's members are the 2-member ensemble's, whose members open the
    # 4-member one; so ESPRO's cost is theirs plus its vertices and its decay probe (an MLP: probed),
    # and no fit time counts start-up
    small, large, espro = (models[n] for n in list(models)[1:])
    np.testing.assert_array_equal(espro.member_fit_times_, small.member_fit_times_)
    np.testing.assert_array_equal(large.member_fit_times_[:2], small.member_fit_times_)
    assert espro.holdout_fit_time_ > 0
    assert table.loc["ESPRO (2 x 2 vertices)", "fit_time_s"] == pytest.approx(
        small.member_fit_times_.sum() + espro.vertex_fit_times_.sum() + espro.holdout_fit_time_
    )


def test_shared_fits_equal_the_estimators_fitted_on_their_own(quick_demo):
    models, (X_train, X_test, y_train, _) = quick_demo
    template = demo_template(QUICK["max_epochs"])
    alone = {
        "single network": DeepEnsembleClassifier(template, n_members=1, random_state=0),
        "deep ensemble (4)": DeepEnsembleClassifier(template, n_members=4, random_state=0),
        "ESPRO (2 x 2 vertices)": ESPROClassifier(
            template,
            n_members=2,
            n_vertices=1,
            vertex_epochs=QUICK["vertex_epochs"],
            n_samples=QUICK["n_samples"],
            random_state=0,
        ),
    }
    for name, model in alone.items():
        proba = model.fit(X_train, y_train).predict_proba(X_test)
        np.testing.assert_array_equal(proba, models[name].predict_proba(X_test), err_msg=name)


def test_quick_demo_command_prints_the_table(quick_demo, capsys):
    assert main(["demo", "--quick", "--quiet", "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("skspro demo on digits: 1257 training and 540 test rows, 64 features, 10 classes")
    models, (_, X_test, _, y_test) = quick_demo
    table = demo_table(models, X_test, y_test)  # same seed: the same models, bit for bit
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    for name, row in table.iterrows():
        for column in ("accuracy", "nll", "ece", "brier"):
            assert f"{row[column]:.4f}" in lines[name], (name, column)


def test_speed_ratios_are_worded_so_they_cannot_mislead():
    assert speed_reading(1.0, 0.599) == "1.67x slower"  # was printed as "0.599 x faster"
    assert speed_reading(1.0, 1.7) == "1.70x faster"
    assert speed_reading(1.0, 1.001) == "as fast"
    with pytest.raises(ValueError, match="positive"):
        speed_reading(0.0, 1.0)


def test_quick_benchmark_measures_training_and_prediction(monkeypatch, capsys):
    import skspro._bench as bench

    measured = []
    real = bench.run_benchmark
    monkeypatch.setattr(bench, "run_benchmark", lambda *a, **k: measured.append(real(*a, **k)) or measured[0])
    assert main(["benchmark", "--quick", "--quiet"]) == 0  # the benchmark runs once
    out = capsys.readouterr().out
    (table,) = measured
    assert np.isfinite(table["value"]).all() and (table["value"] > 0).all()
    assert len(table) == 7
    for measurement, row in table.iterrows():
        assert measurement in out and row["reading"] in out
        if row["unit"] == "time ratio":  # time over the reference's: "slower" exactly when above 1
            assert ("slower" in row["reading"]) == (row["value"] > 1.005), measurement
    fit_ratio = table.loc["fit time of ESPROClassifier() / DeepEnsembleClassifier()"]
    assert fit_ratio["value"] == pytest.approx(table.iloc[1]["value"] / table.iloc[0]["value"])
