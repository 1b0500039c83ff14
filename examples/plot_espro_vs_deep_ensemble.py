"""
ESPRO against a deep ensemble at equal training cost
====================================================

A vertex costs a few epochs, a fraction of a member. The fair comparison
puts ESPRO next to a deep ensemble that took as long to train, with and
without temperature scaling (Benton et al., 2021, Fig. 5), and also reads
ESPRO's single-network path: the centroid of each simplex alone, one forward
per member.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
X_val, X_test, y_val, y_test = train_test_split(
    X_rest, y_rest, test_size=0.6, random_state=0, stratify=y_rest
)
template = default_estimator().set_params(max_epochs=20)

# %%
# Deep ensembles of 1 to 5 members, and ESPRO with 3 members
# ----------------------------------------------------------
# ``warm_start`` adds members to the same ensemble, so every size shares the
# earlier members; the fit time of each network is recorded.
deep = DeepEnsembleClassifier(template, n_members=1, random_state=0, warm_start=True)
rows = []
for n in range(1, 6):
    deep.set_params(n_members=n).fit(X_train, y_train)
    cost = deep.member_fit_times_.sum()
    scaled = CalibratedClassifierCV(FrozenEstimator(deep), method="temperature").fit(X_val, y_val)
    rows.append(
        (
            n,
            cost,
            log_loss(y_test, deep.predict_proba(X_test)),
            log_loss(y_test, scaled.predict_proba(X_test)),
        )
    )

espro = ESPROClassifier(template, n_members=3, n_vertices=2, vertex_epochs=5, random_state=0).fit(
    X_train, y_train
)
espro_cost = espro.member_fit_times_.sum() + espro.vertex_fit_times_.sum()
espro_scaled = CalibratedClassifierCV(FrozenEstimator(espro), method="temperature").fit(X_val, y_val)
espro_nll = log_loss(y_test, espro.predict_proba(X_test))
espro_scaled_nll = log_loss(y_test, espro_scaled.predict_proba(X_test))
centroid_nll = log_loss(y_test, espro.predict_proba_centroids(X_test))

for n, cost, nll, nll_ts in rows:
    print(f"deep ensemble ({n}): {cost:5.1f} s training, NLL {nll:.4f}, temperature-scaled {nll_ts:.4f}")
print(
    f"ESPRO (3 x 2):     {espro_cost:5.1f} s training, NLL {espro_nll:.4f}, "
    f"temperature-scaled {espro_scaled_nll:.4f}"
)
print(f"ESPRO centroids (3 forwards): NLL {centroid_nll:.4f}")

# %%
# NLL against training time
# -------------------------
fig, ax = plt.subplots(figsize=(6, 4))
costs = [r[1] for r in rows]
ax.plot(costs, [r[2] for r in rows], marker="o", label="deep ensemble (1-5 members)")
ax.plot(costs, [r[3] for r in rows], marker="o", linestyle="--", label="deep ensemble, temperature-scaled")
ax.plot(
    [espro_cost], [espro_nll], marker="*", markersize=14, linestyle="none", label="ESPRO (3 x 2 vertices)"
)
ax.plot(
    [espro_cost],
    [espro_scaled_nll],
    marker="*",
    markersize=14,
    linestyle="none",
    label="ESPRO, temperature-scaled",
)
ax.plot(
    [espro.member_fit_times_.sum() + espro.vertex_fit_times_.sum()],
    [centroid_nll],
    marker="D",
    linestyle="none",
    label="ESPRO centroids (3 forwards)",
)
ax.set(xlabel="training time (s, 2 CPU cores)", ylabel="test NLL", title="NLL at equal training cost")
ax.legend(fontsize="small")
plt.show()
