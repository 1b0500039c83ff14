"""
Mode connection and the volume curve
====================================

Two networks trained from different seeds (modes) are joined by a
simplicial complex of low loss: :class:`~skspro.SPROConnector` adds shared
connecting points one at a time. The complex's volume as connectors are
added is the paper's dimensionality experiment: it grows while a new
connector finds a new direction of low loss and collapses once none is
left. On two spirals, the modes and the complex also differ in function:
the two-spirals picture shows where the networks disagree.
"""

# %%
import matplotlib.pyplot as plt

from skspro import SPROConnector, default_estimator
from skspro.datasets import make_two_spirals
from skspro.plotting import plot_decision_surface, plot_loss_surface, plot_volume_curve

X, y = make_two_spirals(600, noise=0.05, random_state=0)
template = default_estimator().set_params(
    max_epochs=60, module__hidden_units=(32, 32), lr=1e-2, batch_size=64
)
connector = SPROConnector(template, n_modes=2, n_connectors=1, connector_epochs=10, reg=0.1, random_state=0)
connector.fit(X, y)
connector.grow_until_collapse(X, y, max_connectors=4, collapse_ratio=0.05)
print("log volumes:", connector.log_volumes_.round(2))
print("relative heights:", connector.relative_heights_.round(3), "collapse at:", connector.collapse_at_)

# %%
# The volume curve
# ----------------
# The log-volume (left axis) and each new connector's height above the older
# vertices relative to the distance between the modes (right axis). A
# collapse (height near zero, marked by a vertical line) says the low-loss
# region has no direction left that the complex does not span; a small MLP
# on two spirals has many, so within four connectors the volume keeps
# growing while the heights fall.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
plot_volume_curve(connector, collapse_ratio=0.05, ax=ax)
plt.show()

# %%
# The loss over the plane through both modes and the first connector
# ------------------------------------------------------------------
# The straight line between the modes crosses high loss; the path through
# the connector stays low.
fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
plot_loss_surface(connector, X, y, points=[("mode", 0), ("mode", 1), ("connector", 0)], n_grid=31, ax=ax)
plt.show()

# %%
# Functional diversity
# --------------------
# The mutual information between the label and the network (how much the
# complex's networks disagree) over the plane of the data.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
plot_decision_surface(connector, X, y, kind="proba", ax=left)
plot_decision_surface(connector, X, y, kind="mutual_information", ax=right)
plt.show()
