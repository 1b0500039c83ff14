"""
The loss surface of a simplex
=============================

The paper's first figure: the training loss over the plane through three
vertices of a simplex that SPRO found, with the simplex drawn on it. Every
point of the triangle is a network of low loss; outside it the loss rises.
The grid is a set of networks evaluated with the vectorised forward
(:func:`~skspro.plotting.loss_surface_grid`).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skspro import ESPROClassifier, default_estimator
from skspro.plotting import loss_surface_grid, plot_loss_surface

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
template = default_estimator().set_params(max_epochs=40, module__hidden_units=(64,))
model = ESPROClassifier(template, n_members=1, n_vertices=2, vertex_epochs=10, reg=1e-3, random_state=0)
model.fit(X, y)
print("relative edge lengths:", model.relative_edge_lengths_.round(3))

# %%
# Loss and accuracy over the plane
# --------------------------------
# The default plane is the first member's simplex: the member and its two
# vertices. The colour scale of the loss is logarithmic, as in the paper.
surface = loss_surface_grid(model, X, y, n_grid=31, margin=1.0, accuracy=True)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
plot_loss_surface(surface, ax=left)
plot_loss_surface(surface, metric="accuracy", ax=right)
plt.show()

# %%
# Plotting the grid yourself
# --------------------------
# :class:`~skspro.plotting.LossSurface` holds the coordinates, the values and
# the vertices' positions in the plane.
print(
    "training loss over the grid:",
    surface.loss.min().round(4),
    "to",
    surface.loss.max().round(2),
)
print("vertices in the plane:\n", surface.points.round(3))
