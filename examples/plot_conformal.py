"""
Conformal prediction sets with MAPIE
====================================

Calibration makes probabilities honest on average; conformal prediction
gives sets of labels that contain the true one with a guaranteed
probability (on exchangeable data). MAPIE's
``SplitConformalClassifier(prefit=True)`` wraps any fitted classifier, a
skspro model included: it is conformalised on held-out data and predicts
sets. A better-calibrated, sharper model gives smaller sets at the same
coverage. MAPIE is not a dependency of skspro (``pip install mapie``).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from mapie.classification import SplitConformalClassifier
from mapie.metrics.classification import classification_coverage_score, classification_mean_width_score
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator
from skspro.datasets import corrupt_images

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
X_conf, X_test, y_conf, y_test = train_test_split(
    X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest
)
template = default_estimator().set_params(max_epochs=20)
models = {
    "deep ensemble (3)": DeepEnsembleClassifier(template, n_members=3, random_state=0).fit(X_train, y_train),
    "ESPRO (3 x 2)": ESPROClassifier(
        template, n_members=3, n_vertices=2, vertex_epochs=5, random_state=0
    ).fit(X_train, y_train),
}

# %%
# Coverage and set size at 90, 95 and 99 % confidence
# ---------------------------------------------------
levels = [0.9, 0.95, 0.99]
X_noisy = corrupt_images(X_test, "gaussian_noise", 2, image_shape=(8, 8), value_range=(0, 1), random_state=0)
results = {}
for name, model in models.items():
    conformal = SplitConformalClassifier(model, confidence_level=levels, conformity_score="lac", prefit=True)
    conformal.conformalize(X_conf, y_conf)
    for data, inputs in (("clean", X_test), ("noisy", X_noisy)):
        _, sets = conformal.predict_set(inputs)
        coverage = classification_coverage_score(y_test, sets)
        size = classification_mean_width_score(sets)
        results[name, data] = (coverage, size)
        for level, c, s in zip(levels, coverage, size):
            print(f"{name:18s} {data:5s} level {level:.2f}: coverage {c:.3f}, mean set size {s:.2f}")

# %%
# Mean set size against the confidence level
# ------------------------------------------
# On clean data both reach the level asked for; on noisy inputs (not
# exchangeable with the conformalisation data) coverage is no longer
# guaranteed.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for (name, data), (_, size) in results.items():
    ax.plot(levels, size, marker="o", linestyle="-" if data == "clean" else "--", label=f"{name}, {data}")
ax.set(
    xlabel="confidence level", ylabel="mean prediction-set size", title="Conformal sets (MAPIE, LAC score)"
)
ax.legend(fontsize="small")
plt.show()
