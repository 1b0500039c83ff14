"""
Calibration under dataset shift, selective classification and OOD detection
===========================================================================

How a model's accuracy and calibration degrade as the inputs are corrupted
(after Ovadia et al., 2019), what post-hoc calibration buys (temperature
scaling, and netcal's maps through
:class:`~skspro.calibration.NetcalCalibratedClassifier`), how much a model
gains by abstaining on its least confident rows, and how well its
uncertainty flags corrupted inputs.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator
from skspro.calibration import NetcalCalibratedClassifier
from skspro.datasets import corrupt_images
from skspro.metrics import (
    aurc,
    calibration_report,
    expected_calibration_error,
    negative_log_likelihood,
    ood_detection_report,
    risk_coverage_curve,
)
from skspro.plotting import plot_shift_curve, reliability_diagram

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
X_val, X_test, y_val, y_test = train_test_split(
    X_rest, y_rest, test_size=0.6, random_state=0, stratify=y_rest
)
template = default_estimator().set_params(max_epochs=20)
deep = DeepEnsembleClassifier(template, n_members=3, random_state=0).fit(X_train, y_train)
espro = ESPROClassifier(template, n_members=3, n_vertices=2, vertex_epochs=5, random_state=0).fit(
    X_train, y_train
)

# %%
# Raw, temperature-scaled and netcal-calibrated, side by side
# -----------------------------------------------------------
# Every calibrator wraps the frozen model and learns on held-out data.
models = {"DE-3": deep, "ESPRO": espro}
models["ESPRO + temperature"] = CalibratedClassifierCV(FrozenEstimator(espro), method="temperature").fit(
    X_val, y_val
)
for method in ("histogram", "isotonic", "beta"):
    models[f"ESPRO + {method}"] = NetcalCalibratedClassifier(FrozenEstimator(espro), method=method).fit(
        X_val, y_val
    )
print(calibration_report(models, X_test, y_test).round(4).to_string())

# %%
# Shift curves
# ------------
# Five corruptions at five severities. The line is the mean over the
# corruptions, the band their interquartile range.
rows = []
corruptions = ("gaussian_noise", "gaussian_blur", "rotation", "translation", "contrast")
shifted = {}
for corruption in corruptions:
    for severity in range(0, 6):
        X_shift = (
            X_test
            if severity == 0
            else corrupt_images(
                X_test, corruption, severity, image_shape=(8, 8), value_range=(0, 1), random_state=0
            )
        )
        shifted[corruption, severity] = X_shift
        for name in ("DE-3", "ESPRO", "ESPRO + temperature"):
            proba = models[name].predict_proba(X_shift)
            rows.append(
                {
                    "model": name,
                    "corruption": corruption,
                    "severity": severity,
                    "accuracy": float((proba.argmax(1) == y_test).mean()),
                    "ece": expected_calibration_error(y_test, proba),
                    "nll": negative_log_likelihood(y_test, proba),
                }
            )
results = pd.DataFrame(rows)
fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
for ax, metric in zip(axes, ("accuracy", "ece", "nll")):
    plot_shift_curve(results, metric=metric, ax=ax)
plt.show()

# %%
# Reliability diagrams, clean and shifted
# ---------------------------------------
fig, (clean, noisy) = plt.subplots(1, 2, figsize=(10, 5), layout="constrained")
reliability_diagram(
    y_test, {name: models[name].predict_proba(X_test) for name in ("DE-3", "ESPRO")}, n_bins=10, ax=clean
)
clean.set_title("clean test data")
X_noise = shifted["gaussian_noise", 3]
reliability_diagram(
    y_test, {name: models[name].predict_proba(X_noise) for name in ("DE-3", "ESPRO")}, n_bins=10, ax=noisy
)
noisy.set_title("Gaussian noise, severity 3")
plt.show()

# %%
# Selective classification
# ------------------------
# Risk (error rate among the rows the model predicts on) against coverage,
# on the noisy data; AURC summarises each curve.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for name in ("DE-3", "ESPRO"):
    proba = models[name].predict_proba(X_noise)
    curve = risk_coverage_curve(y_test, proba)
    ax.step(curve.coverage, curve.risk, where="post", label=f"{name} (AURC {aurc(y_test, proba):.3f})")
ax.set(xlabel="coverage", ylabel="selective risk", title="Risk-coverage, Gaussian noise severity 3")
ax.legend()
plt.show()

# %%
# Out-of-distribution detection
# -----------------------------
# Clean test rows against the same rows under strong Gaussian noise, by three scores.
X_ood = shifted["gaussian_noise", 5]
for name, model in (("DE-3", deep), ("ESPRO", espro)):
    print(name)
    print(
        ood_detection_report(model.predict_proba_networks(X_test), model.predict_proba_networks(X_ood)).round(
            3
        )
    )
