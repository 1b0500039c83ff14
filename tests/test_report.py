"""calibration_report on any classifier, and the quick digits report behind ``skspro report``."""

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_iris
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator
from skspro._report import run_report
from skspro.metrics import (
    average_calibration_error,
    brier_score,
    calibration_report,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
)

COLUMNS = ["accuracy", "nll", "ece", "mce", "ace", "brier", "predict_time_s", "n_networks"]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, np.array(["setosa", "versicolor", "virginica"])[y]


def test_report_values_for_any_classifier(iris):
    X, y = iris
    model = LogisticRegression(max_iter=1000).fit(X, y)
    report = calibration_report({"logistic": model}, X[50:], y[50:], n_bins=10)  # no setosa in y
    assert list(report.columns) == COLUMNS and report.index.name == "model"
    row = report.loc["logistic"]
    proba = model.predict_proba(X[50:])
    labels = model.classes_
    assert row["accuracy"] == pytest.approx(model.score(X[50:], y[50:]))
    assert row["nll"] == pytest.approx(negative_log_likelihood(y[50:], proba, labels=labels))
    assert row["ece"] == pytest.approx(expected_calibration_error(y[50:], proba, n_bins=10, labels=labels))
    assert row["mce"] == pytest.approx(maximum_calibration_error(y[50:], proba, n_bins=10, labels=labels))
    assert row["ace"] == pytest.approx(average_calibration_error(y[50:], proba, n_bins=10, labels=labels))
    assert row["brier"] == pytest.approx(brier_score(y[50:], proba, labels=labels))
    assert row["predict_time_s"] > 0 and row["n_networks"] == 1


def test_report_names_lists_and_counts_networks(iris):
    X, y = iris
    template = default_estimator().set_params(max_epochs=5)
    espro = ESPROClassifier(template, n_members=2, n_vertices=1, vertex_epochs=2, n_samples=3, random_state=0)
    models = [
        LogisticRegression(max_iter=1000).fit(X, y),
        LogisticRegression(C=0.01, max_iter=1000).fit(X, y),
        make_pipeline(StandardScaler(), espro).fit(X, y),
    ]
    report = calibration_report(models, X, y)
    assert list(report.index) == ["LogisticRegression", "LogisticRegression (2)", "ESPROClassifier"]
    assert report["n_networks"].tolist() == [1, 1, 6]
    # the strongly regularised model is less sure of itself, and so worse in NLL here
    assert report["nll"].iloc[1] > report["nll"].iloc[0]

    # networks are counted through wrappers: temperature scaling around the frozen model, a
    # cross-validated calibration (one fitted copy per fold), a grid search (its best estimator)
    template = default_estimator().set_params(max_epochs=2)
    ensemble = DeepEnsembleClassifier(template, n_members=2, random_state=0)
    scaled = CalibratedClassifierCV(FrozenEstimator(models[2]), method="temperature")
    search = GridSearchCV(
        make_pipeline(StandardScaler(), ensemble), {"deepensembleclassifier__n_members": [3]}, cv=2
    )
    wrapped = {
        "temperature-scaled": scaled.fit(X, y),
        "frozen": FrozenEstimator(models[2]),
        "3-fold calibrated": CalibratedClassifierCV(ensemble, method="temperature", cv=3).fit(X, y),
        "searched": search.fit(X, y),
        "calibrated logistic": CalibratedClassifierCV(LogisticRegression(max_iter=1000), cv=2).fit(X, y),
    }
    counts = calibration_report(wrapped, X, y)["n_networks"].tolist()
    assert counts == [6, 6, 3 * 2, 3, 2]


def test_printed_report_shows_every_column(iris):
    X, y = iris
    report = calibration_report([LogisticRegression(max_iter=1000).fit(X, y)], X, y)
    with pd.option_context("display.max_columns", 3, "display.width", 40):
        text = str(report)
        assert repr(report) == text
    assert "..." not in text and all(column in text for column in COLUMNS)
    assert len(text.splitlines()) == 3  # header, index name, one row: no wrapped column blocks
    assert type(report[["ece"]]) is pd.DataFrame  # derived tables are plain frames


def test_report_bad_input(iris):
    X, y = iris
    with pytest.raises(ValueError, match="has no predict_proba"):
        calibration_report({"svc": SVC().fit(X, y)}, X, y)
    with pytest.raises(ValueError, match="a dict .* or a list"):
        calibration_report(LogisticRegression(max_iter=1000).fit(X, y), X, y)
    with pytest.raises(ValueError, match="estimators is empty"):
        calibration_report({}, X, y)
    with pytest.raises(ValueError, match="y_true has 10 labels but y_proba has 150 rows"):
        calibration_report([LogisticRegression(max_iter=1000).fit(X, y)], X, y[:10])


def test_full_report_compares_the_defaults():
    from skspro import DeepEnsembleClassifier
    from skspro._report import _SETTINGS, _settings_note

    full, espro = _SETTINGS[False], ESPROClassifier()
    assert full["larger_ensemble"] == DeepEnsembleClassifier().n_members
    assert full["max_epochs"] == default_estimator().max_epochs
    for key in ("n_members", "n_vertices", "vertex_epochs", "n_samples"):
        assert full[key] == getattr(espro, key), key
    assert "the defaults" in _settings_note(False) and "smaller than the defaults" in _settings_note(True)


def test_quick_digits_report(tmp_path):
    table = run_report(tmp_path / "out", quick=True, random_state=0)
    out = tmp_path / "out"
    names = ["single network", "deep ensemble (2)", "deep ensemble (3)", "ESPRO (2 x 2 vertices)"]
    assert list(table.columns) == [*COLUMNS, "fit_time_s", "train_epochs"] and list(table.index) == names
    assert table["n_networks"].tolist() == [1, 2, 3, 6]
    assert table["train_epochs"].tolist() == [10, 20, 30, 2 * (10 + 2)]
    # shared members: each ensemble's training time includes the smaller one's, ESPRO's the 2-member one's
    fit = table["fit_time_s"]
    assert 0 < fit.iloc[0] < fit.iloc[1] < fit.iloc[2] and fit.iloc[1] < fit.iloc[3]
    assert np.all(table["accuracy"] > 0.85)  # digits is easy; the models did learn
    np.testing.assert_allclose(pd.read_csv(out / "calibration_report.csv", index_col="model"), table)
    markdown = (out / "calibration_report.md").read_text()
    assert markdown.startswith("Models: --quick settings, smaller than the defaults")
    table_lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header, _, *lines = [[cell.strip() for cell in line.strip("|").split("|")] for line in table_lines]
    cells = {line[0]: dict(zip(header, line)) for line in lines}
    assert list(cells) == names and header[1:] == list(table.columns)  # every column, no hidden ones
    for name, row in table.iterrows():
        assert cells[name]["ece"] == f"{row['ece']:.4f}"
        assert cells[name]["train_epochs"] == str(int(row["train_epochs"]))
    assert "fit_time_s: seconds of training" in markdown
    for image in ("reliability_diagram.png", "shift_curve.png"):
        assert (out / image).read_bytes()[:4] == b"\x89PNG"

    shift = pd.read_csv(out / "shift_results.csv")
    assert len(shift) == 4 * (1 + 5 * 5)  # models x (clean + corruptions x severities)
    assert set(shift["severity"]) == {0, 1, 2, 3, 4, 5}
    for _, rows in shift.groupby("model"):
        accuracy = rows.groupby("severity")["accuracy"].mean()
        assert accuracy[5] < accuracy[0] - 0.2  # strong corruptions hurt
    clean = shift[shift["severity"] == 0].set_index("model")
    np.testing.assert_allclose(clean.loc[table.index, "accuracy"], table["accuracy"])
    np.testing.assert_allclose(clean.loc[table.index, "nll"], table["nll"])
