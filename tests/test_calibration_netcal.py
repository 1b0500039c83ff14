"""netcal calibrators wrapped as estimators, against netcal called directly."""

import numpy as np
import pytest
from netcal.binning import BBQ, ENIR, HistogramBinning, IsotonicRegression
from netcal.scaling import BetaCalibration, TemperatureScaling
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skspro.calibration import NETCAL_METHODS, NetcalCalibratedClassifier
from skspro.metrics import calibration_report, negative_log_likelihood

DIRECT = {
    "histogram": lambda: HistogramBinning(bins=10),
    "isotonic": IsotonicRegression,
    "beta": BetaCalibration,
    "bbq": BBQ,
    "enir": ENIR,
}


class FixedProba(ClassifierMixin, BaseEstimator):
    """A 'fitted' classifier whose probabilities are the rows of X (in its dtype)."""

    def __init__(self, classes):
        self.classes = classes

    def fit(self, X, y=None):
        return self

    def __sklearn_is_fitted__(self):
        return True

    @property
    def classes_(self):
        return np.asarray(self.classes)

    def predict_proba(self, X):
        return np.asarray(X)


def overconfident(seed, n, n_classes):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, n_classes)) * 3
    true = np.exp(logits / 2.5) / np.exp(logits / 2.5).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(n_classes, p=p) for p in true])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return proba, y


@pytest.mark.parametrize("method", NETCAL_METHODS)
@pytest.mark.parametrize("n_classes", [2, 4])
def test_equals_netcal_called_directly(method, n_classes, capsys):
    proba, y = overconfident(0, 400, n_classes)
    test_proba, _ = overconfident(1, 100, n_classes)
    labels = np.array(["a", "b", "c", "d"][:n_classes])
    model = FixedProba(labels)
    wrapped = NetcalCalibratedClassifier(FrozenEstimator(model), method=method).fit(proba, labels[y])
    direct = DIRECT[method]()
    netcal_in = proba[:, 1] if n_classes == 2 else proba
    direct.fit(netcal_in, y)
    expected = direct.transform(test_proba[:, 1] if n_classes == 2 else test_proba)
    got = wrapped.predict_proba(test_proba)
    assert got.shape == (100, n_classes)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    if n_classes == 2:
        np.testing.assert_allclose(got[:, 1], np.clip(expected, 0, 1), atol=1e-10)
    else:
        np.testing.assert_allclose(got, expected / expected.sum(axis=1, keepdims=True), atol=1e-10)
    assert set(wrapped.predict(test_proba)) <= set(labels)
    assert "Not all class labels" not in capsys.readouterr().out  # nothing printed


def test_float32_trap_is_guarded():
    """netcal's temperature scaling fitted on float32 returns its input unchanged (netcal 1.4):
    skspro uses scikit-learn's temperature scaling and gives netcal float64."""
    proba, y = overconfident(0, 500, 4)
    naive = TemperatureScaling().fit(proba.astype(np.float32), y)
    np.testing.assert_allclose(naive.transform(proba.astype(np.float32)), proba, atol=1e-5)  # the trap
    fixed = TemperatureScaling().fit(proba, y)
    assert np.abs(fixed.transform(proba) - proba).max() > 0.05
    for method in ("beta", "histogram"):
        wrapped32 = NetcalCalibratedClassifier(FixedProba([0, 1, 2, 3]), method=method)
        wrapped64 = NetcalCalibratedClassifier(FixedProba([0, 1, 2, 3]), method=method)
        wrapped32.fit(proba.astype(np.float32), y)
        wrapped64.fit(proba.astype(np.float32).astype(np.float64), y)
        fresh, y_fresh = overconfident(2, 500, 4)
        got = wrapped32.predict_proba(fresh.astype(np.float32))
        np.testing.assert_allclose(got, wrapped64.predict_proba(fresh.astype(np.float32).astype(np.float64)))
        # and it calibrates: lower NLL on fresh data than the over-confident input
        assert negative_log_likelihood(y_fresh, got) < 0.9 * negative_log_likelihood(y_fresh, fresh)


def test_errors_a_user_sees():
    proba, y = overconfident(0, 100, 3)
    with pytest.raises(ValueError, match="already fitted classifier"):
        NetcalCalibratedClassifier(LogisticRegression()).fit(proba, y)
    model = FixedProba([0, 1, 2])
    with pytest.raises(ValueError, match=r"no row of the classes \[2\]"):
        NetcalCalibratedClassifier(model).fit(proba, np.where(y == 2, 0, y))
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        NetcalCalibratedClassifier(model).fit(proba, np.where(y == 2, 7, y))
    with pytest.raises(ValueError, match="method"):
        NetcalCalibratedClassifier(model, method="platt").fit(proba, y)


def test_side_by_side_in_calibration_report():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    model = LogisticRegression(C=1e4, max_iter=5000).fit(X[:400], y[:400])  # over-confident
    X_val, y_val, X_test, y_test = X[400:1000], y[400:1000], X[1000:], y[1000:]
    models = {"raw": model}
    models["temperature"] = CalibratedClassifierCV(FrozenEstimator(model), method="temperature").fit(
        X_val, y_val
    )
    for method in ("histogram", "isotonic", "beta"):
        models[method] = NetcalCalibratedClassifier(FrozenEstimator(model), method=method).fit(X_val, y_val)
    report = calibration_report(models, X_test, y_test)
    assert list(report.index) == list(models)
    assert (report["n_networks"] == 1).all()
    assert report.loc["raw", "nll"] > 0.4  # over-confident enough to need calibration
    for name in ("temperature", "beta"):
        assert report.loc[name, "nll"] < 0.8 * report.loc["raw", "nll"]
        assert report.loc[name, "ece"] < report.loc["raw", "ece"]
