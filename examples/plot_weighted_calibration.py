"""
Weighted, imbalanced, calibrated: scikit-learn code with ESPRO swapped in
=========================================================================

scikit-learn's *probability calibration for 3-class classification* example,
moved onto an imbalanced problem as real code would meet it: per-row
``sample_weight`` (here: rows of one source count less), ``class_weight=
"balanced"`` for the rare classes, a ``Pipeline`` that routes the weights,
temperature scaling on held-out data, and the whole fitted pipeline saved
and loaded without pickle. Only the classifier's name changes.
"""

# %%
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import balanced_accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skspro
from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator

sklearn.set_config(enable_metadata_routing=True)

X, y = make_classification(
    n_samples=3000,
    n_features=10,
    n_informative=6,
    n_classes=3,
    weights=[0.8, 0.15, 0.05],
    class_sep=0.8,
    random_state=0,
)
source = np.random.default_rng(0).random(len(y)) < 0.3  # 30 % of the rows come from a noisier source
sample_weight = np.where(source, 0.5, 1.0)
X_train, X_rest, y_train, y_rest, w_train, w_rest = train_test_split(
    X, y, sample_weight, test_size=0.5, stratify=y, random_state=0
)
X_valid, X_test, y_valid, y_test, w_valid, w_test = train_test_split(
    X_rest, y_rest, w_rest, test_size=0.5, stratify=y_rest, random_state=0
)
print("class counts in training:", np.bincount(y_train))

# %%
# The same code for both classifiers
# ----------------------------------
# Scaling ignores the weights; the classifier requests them. Both train on the
# same members (the same ``random_state``), so the difference is the simplexes.
template = default_estimator().set_params(max_epochs=20)


def weighted_pipeline(classifier):
    scaler = StandardScaler().set_fit_request(sample_weight=False)
    return make_pipeline(scaler, classifier.set_fit_request(sample_weight=True))


models = {
    "deep ensemble (5)": DeepEnsembleClassifier(template, class_weight="balanced", random_state=0),
    "ESPRO (4 x 2)": ESPROClassifier(template, class_weight="balanced", random_state=0),
}
rows = {}
for name, classifier in models.items():
    pipeline = weighted_pipeline(classifier).fit(X_train, y_train, sample_weight=w_train)
    calibrated = CalibratedClassifierCV(FrozenEstimator(pipeline), method="temperature")
    calibrated.set_fit_request(sample_weight=True).fit(X_valid, y_valid, sample_weight=w_valid)
    models[name] = (pipeline, calibrated)
    for label, model in (("raw", pipeline), ("temperature", calibrated)):
        proba = model.predict_proba(X_test)
        rows[f"{name}, {label}"] = (
            log_loss(y_test, proba, sample_weight=w_test),
            balanced_accuracy_score(y_test, proba.argmax(1)),
        )
print(f"{'model':34s} {'weighted NLL':>12s} {'balanced acc':>12s}")
for name, (nll, accuracy) in rows.items():
    print(f"{name:34s} {nll:12.4f} {accuracy:12.3f}")

# %%
# Probabilities on the simplex, before and after calibration
# ----------------------------------------------------------
# As in scikit-learn's example: each arrow goes from a test row's raw
# probabilities to its temperature-scaled ones (first two classes shown).
pipeline, calibrated = models["ESPRO (4 x 2)"]
raw, scaled = pipeline.predict_proba(X_test[:200]), calibrated.predict_proba(X_test[:200])
fig, ax = plt.subplots(figsize=(5, 5))
colors = np.array(["tab:red", "tab:green", "tab:blue"])[y_test[:200]]
for start, end, color in zip(raw, scaled, colors):
    ax.annotate("", xy=end[:2], xytext=start[:2], arrowprops=dict(arrowstyle="->", color=color, lw=0.6))
ax.plot([0, 1, 0, 0], [0, 0, 1, 0], color="k", lw=0.8)
ax.set(xlabel="P(class 0)", ylabel="P(class 1)", title="ESPRO: raw -> temperature-scaled", aspect="equal")
plt.show()

# %%
# The whole fitted pipeline, saved and loaded without pickle
# ----------------------------------------------------------
path = tempfile.mkdtemp() + "/calibrated.skspro"
skspro.save(calibrated, path)
restored = skspro.load(path, ESPROClassifier(template))
print(
    "same predictions after load:",
    np.array_equal(restored.predict_proba(X_test), calibrated.predict_proba(X_test)),
)
sklearn.set_config(enable_metadata_routing=False)
