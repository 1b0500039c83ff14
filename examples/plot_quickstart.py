"""
Quickstart: ESPRO on digits
===========================

Fit an :class:`~skspro.ESPROClassifier` in a scikit-learn pipeline, compare
it with a :class:`~skspro.DeepEnsembleClassifier` of the same members, and
look at their calibration.
"""

# %%
# Data and models
# ---------------
# scikit-learn's 8x8 digits, half for training. Both models share their
# members (same ``random_state``); ESPRO grows a simplex of two vertices
# around each.
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator
from skspro.metrics import calibration_report
from skspro.plotting import reliability_diagram

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
template = default_estimator().set_params(max_epochs=15)

deep = make_pipeline(StandardScaler(), DeepEnsembleClassifier(template, n_members=3, random_state=0))
espro = make_pipeline(
    StandardScaler(), ESPROClassifier(template, n_members=3, n_vertices=2, vertex_epochs=5, random_state=0)
)
deep.fit(X_train, y_train)
espro.fit(X_train, y_train)

# %%
# The comparison
# --------------
# ``calibration_report`` scores every model on the same data: accuracy, NLL,
# ECE / MCE / ACE, Brier score, prediction time and networks evaluated.
report = calibration_report({"deep ensemble (3)": deep, "ESPRO (3 x 2 vertices)": espro}, X_test, y_test)
print(report.round(4).to_string())

# %%
# Reliability diagram
# -------------------
# Accuracy against confidence per bin; the shaded histograms show how many
# test rows each bin holds (most are in the last one).
fig, ax = plt.subplots(figsize=(5, 5))
reliability_diagram(
    y_test,
    {"deep ensemble": deep.predict_proba(X_test), "ESPRO": espro.predict_proba(X_test)},
    n_bins=10,
    ax=ax,
)
plt.show()
