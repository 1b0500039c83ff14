"""Figures: what they draw, that they draw into a given Axes, and that they save."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skspro import DeepEnsembleClassifier, default_estimator  # noqa: E402
from skspro.datasets import make_two_spirals  # noqa: E402
from skspro.metrics import expected_calibration_error  # noqa: E402
from skspro.plotting import plot_decision_surface, plot_shift_curve, reliability_diagram  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _saves(ax, path):
    ax.figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def reference_bins(y, proba, n_bins, strategy):
    """(mean confidence, accuracy) of each non-empty bin, by explicit loops."""
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        edges = np.quantile(confidence, np.linspace(0, 1, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
    points = []
    for b in range(n_bins):
        upper_ok = confidence <= edges[b + 1] if b == n_bins - 1 else confidence < edges[b + 1]
        members = (confidence >= edges[b]) & upper_ok
        if members.any():
            points.append((confidence[members].mean(), correct[members].mean()))
    return np.array(points)


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([0.5, 0.5, 0.5], size=400)
    y = (rng.uniform(size=(400, 1)) > proba.cumsum(axis=1)).sum(axis=1)
    sharp = proba**4 / (proba**4).sum(axis=1, keepdims=True)
    return y, {"calibrated": proba, "over-confident": sharp}


@pytest.fixture(scope="module")
def spirals():
    return make_two_spirals(200, noise=0.05, random_state=0)


# ----------------------------------------------------------------------- reliability
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_diagram_lines_match_the_metric(predictions, strategy, tmp_path):
    y, models = predictions
    ax = reliability_diagram(y, models, n_bins=10, strategy=strategy)
    assert len(ax.lines) == 1 + len(models)  # the diagonal and one line per model
    np.testing.assert_array_equal(ax.lines[0].get_xydata(), [[0, 0], [1, 1]])
    for line, (name, proba) in zip(ax.lines[1:], models.items()):
        ece = expected_calibration_error(y, proba, n_bins=10, strategy=strategy)
        assert line.get_label() == f"{name} (ECE {ece:.3f})"
        np.testing.assert_allclose(line.get_xydata(), reference_bins(y, proba, 10, strategy), rtol=1e-12)
    over_confident = ax.lines[2].get_xydata()
    assert np.mean(over_confident[:, 1] < over_confident[:, 0]) > 0.5  # mostly below the diagonal
    _saves(ax, tmp_path / "reliability.png")


def test_reliability_diagram_single_model_into_given_axes(predictions, tmp_path):
    y, models = predictions
    figure, (left, right) = plt.subplots(1, 2)
    ax = reliability_diagram(y, models["calibrated"], ax=right)
    assert ax is right and len(right.lines) == 2 and len(left.lines) == 0
    _saves(ax, tmp_path / "single.png")


def test_reliability_diagram_bad_input(predictions):
    y, models = predictions
    with pytest.raises(ValueError, match="empty dict"):
        reliability_diagram(y, {})
    with pytest.raises(ValueError, match="must sum to 1"):
        reliability_diagram(y, {"bad": models["calibrated"] * 2})


# ----------------------------------------------------------------------- shift curve
def _shift_results():
    rows = []
    for model, drop in (("single", 0.15), ("ensemble", 0.1)):
        rows.append({"model": model, "corruption": "none", "severity": 0, "accuracy": 0.95, "ece": 0.02})
        for corruption, extra in (("noise", 0.0), ("rotation", 0.05)):
            for severity in range(1, 6):
                accuracy = 0.95 - (drop + extra) * severity
                rows.append(
                    {
                        "model": model,
                        "corruption": corruption,
                        "severity": severity,
                        "accuracy": accuracy,
                        "ece": 0.02 + 0.3 * (0.95 - accuracy),
                    }
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("metric", ["accuracy", "ece"])
def test_shift_curve_one_line_per_model_with_band(metric, tmp_path):
    results = _shift_results()
    ax = plot_shift_curve(results, metric=metric)
    assert [line.get_label() for line in ax.lines] == ["single", "ensemble"]
    assert len(ax.collections) == 2  # one interquartile band per model
    for line, (_, rows) in zip(ax.lines, results.groupby("model", sort=False)):
        expected = rows.groupby("severity")[metric].mean()
        np.testing.assert_allclose(line.get_xdata(), expected.index)
        np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())
    _saves(ax, tmp_path / f"shift_{metric}.png")


def test_shift_curve_bad_input():
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['nll'\]"):
        plot_shift_curve(_shift_results(), metric="nll")
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        plot_shift_curve({"model": ["a"]})


# ------------------------------------------------------------------ decision surface
@pytest.mark.parametrize("kind", ["proba", "entropy"])
def test_decision_surface_of_any_classifier(spirals, kind, tmp_path):
    X, y = spirals
    model = KNeighborsClassifier(10).fit(X, y)
    ax = plot_decision_surface(model, X, y, kind=kind, grid_resolution=30)
    assert len(ax.collections) == 1 + 2  # the filled contours, then one scatter per class
    assert len(ax.figure.axes) == 2  # and a colour bar
    contours = ax.collections[0]
    if kind == "proba":
        assert contours.get_clim() == (0.0, 1.0)
    else:
        assert 0.0 <= contours.levels.min() and contours.levels.max() <= np.log(2) + 0.05
    _saves(ax, tmp_path / f"surface_{kind}.png")


def test_decision_surface_mutual_information_of_an_ensemble(spirals, tmp_path):
    X, y = spirals
    template = default_estimator().set_params(max_epochs=10, module__hidden_units=(32,))
    model = make_pipeline(StandardScaler(), DeepEnsembleClassifier(template, n_members=2, random_state=0))
    model.fit(X, y)
    figure, ax = plt.subplots()
    returned = plot_decision_surface(model, X, kind="mutual_information", grid_resolution=25, ax=ax)
    assert returned is ax and len(ax.collections) == 1  # no y: no points
    assert ax.collections[0].levels.min() >= 0.0
    _saves(ax, tmp_path / "surface_mi.png")
    with pytest.raises(ValueError, match="has no predict_proba_networks"):
        plot_decision_surface(KNeighborsClassifier().fit(X, y), X, kind="mutual_information")


def test_decision_surface_bad_input(spirals):
    X, y = spirals
    model = KNeighborsClassifier().fit(X, y)
    with pytest.raises(ValueError, match=r"needs 2-D data shaped \(n_samples, 2\); got shape \(200, 3\)"):
        plot_decision_surface(model, np.column_stack([X, X[:, 0]]))
    with pytest.raises(ValueError, match="kind must be one of"):
        plot_decision_surface(model, X, kind="variance")
    with pytest.raises(ValueError, match="one label per row"):
        plot_decision_surface(model, X, y[:10])
