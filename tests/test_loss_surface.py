"""Loss-surface grid and the figures it feeds: values against a direct loss computation."""

import copy

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skspro import ESPROClassifier, SPROConnector, default_estimator  # noqa: E402
from skspro.plotting import (  # noqa: E402
    loss_surface_grid,
    plot_loss_surface,
    plot_shift_curve,
    plot_volume_curve,
    reliability_diagram,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


def espro(batch_norm=False, seed=0):
    template = default_estimator().set_params(
        max_epochs=8, module__hidden_units=(16,), module__batch_norm=batch_norm, lr=1e-2
    )
    return ESPROClassifier(
        template, n_members=1, n_vertices=2, vertex_epochs=2, n_samples=3, reg=1e-2, random_state=seed
    )


def direct_loss(model, vectors, u, v, X, y, batch_norm):
    """Cross-entropy of the network c + u*e_u + v*e_v, built from the flat vectors in float64."""
    flat = torch.stack([torch.cat([vec[n].reshape(-1) for n in vectors[0]]) for vec in vectors]).double()
    center = flat.mean(0)
    e_u = (flat[1] - flat[0]) / (flat[1] - flat[0]).norm()
    second = flat[2] - flat[0]
    second = second - (second @ e_u) * e_u
    e_v = second / second.norm()
    theta = (center + u * e_u + v * e_v).float()
    net = copy.deepcopy(model.networks_.module)
    torch.nn.utils.vector_to_parameters(theta, [net.get_parameter(n) for n in vectors[0]])
    x = torch.as_tensor(X)
    with torch.no_grad():
        if batch_norm:
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm1d):
                    m.reset_running_stats()
                    m.momentum = None
                    m.train()
            for start in range(0, len(x), 64):  # the template's batch size, as at the end of fit
                net(x[start : start + 64])
            net.eval()
        logits = net(x)
    return float(torch.nn.functional.cross_entropy(logits.double(), torch.as_tensor(y)))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_grid_values_against_a_direct_loss(iris, batch_norm):
    X, y = iris
    model = espro(batch_norm).fit(X, y)
    surface = loss_surface_grid(model, X, y, n_grid=7, accuracy=True, batch_size=64)
    vectors = [model.simplexes_[0].vertex(i) for i in range(3)]
    for i, j in [(0, 0), (3, 2), (6, 5)]:
        expected = direct_loss(model, vectors, surface.u[j], surface.v[i], X, y, batch_norm)
        assert surface.loss[i, j] == pytest.approx(expected, rel=2e-4)
    assert surface.loss.shape == surface.accuracy.shape == (7, 7)
    assert np.all((surface.accuracy >= 0) & (surface.accuracy <= 1))
    # the vertices lie in the plane at their 2-D coordinates; affine weights sum to 1
    np.testing.assert_allclose(surface.barycentric.sum(axis=2), 1.0, atol=1e-12)
    flat = model.simplexes_[0].flat()[:3].double()
    rebuilt = surface.center + torch.as_tensor(surface.points) @ surface.basis
    torch.testing.assert_close(rebuilt, flat, atol=1e-5, rtol=1e-5)
    # the grid covers the triangle with a margin
    assert surface.u[0] < surface.points[:, 0].min() and surface.u[-1] > surface.points[:, 0].max()


def test_points_members_networks_and_pipelines(iris):
    X, y = iris
    raw = X * 3 + 1
    pipe = make_pipeline(StandardScaler(), espro()).fit(raw, y)
    model = pipe[-1]
    by_network = loss_surface_grid(
        pipe, raw, y, points=[("network", 0), ("network", 1), ("vertex", 0, 2)], n_grid=3
    )
    assert by_network.labels == ("network 0", "network 1", "vertex 2")
    # a dict of tensors and the same point by name give the same grid
    named = loss_surface_grid(model, X, y, n_grid=3)
    dicts = loss_surface_grid(model, X, y, points=[model.simplexes_[0].vertex(i) for i in range(3)], n_grid=3)
    np.testing.assert_allclose(named.loss, dicts.loss)
    with pytest.raises(ValueError, match="does not exist"):
        loss_surface_grid(model, X, y, points=[("member", 0), ("member", 1), ("vertex", 0, 1)])
    with pytest.raises(ValueError, match="exactly three"):
        loss_surface_grid(model, X, y, points=[("member", 0), ("vertex", 0, 1)])
    with pytest.raises(ValueError, match="on one line"):
        loss_surface_grid(model, X, y, points=[("vertex", 0, 0), ("vertex", 0, 1), ("vertex", 0, 1)])


def test_plot_loss_surface_draws_the_grid_and_the_simplex(iris):
    X, y = iris
    model = espro().fit(X, y)
    surface = loss_surface_grid(model, X, y, n_grid=6)
    ax = plot_loss_surface(surface)
    contour = ax.collections[0]
    assert isinstance(contour.norm, mcolors.LogNorm)
    assert contour.norm.vmin == pytest.approx(surface.loss.min())
    assert contour.norm.vmax == pytest.approx(surface.loss.max())
    edges, vertices = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(edges.get_xydata(), np.vstack([surface.points, surface.points[:1]]))
    np.testing.assert_allclose(vertices.get_xydata(), surface.points)
    assert ax.get_xlabel() == "u (distance in weight space)"
    assert ax.get_ylabel() == "v (distance in weight space)"
    assert [t.get_text() for t in ax.texts] == ["member 0", "vertex 1", "vertex 2"]
    assert ax.figure.axes[1].get_ylabel() == "training loss (log scale)"  # the colour bar
    acc = plot_loss_surface(model, X, y, metric="accuracy", n_grid=4)
    assert acc.figure.axes[1].get_ylabel() == "accuracy"
    with pytest.raises(ValueError, match="no accuracy"):
        plot_loss_surface(surface, metric="accuracy")


@pytest.fixture(scope="module")
def connector(iris):
    X, y = iris
    template = default_estimator().set_params(max_epochs=5, module__hidden_units=(16,), lr=1e-2)
    model = SPROConnector(template, n_modes=2, n_connectors=1, connector_epochs=2, reg=1e-2, random_state=0)
    model.fit(X, y)
    return model.grow_until_collapse(X, y, max_connectors=3, collapse_ratio=0.5)


def test_connector_surface_and_volume_curve(iris, connector):
    X, y = iris
    surface = loss_surface_grid(connector, X, y, n_grid=3)  # modes 0, 1 and the first connector
    assert surface.labels == ("vertex 0", "vertex 1", "vertex 2")
    modes = loss_surface_grid(connector, X, y, points=[("mode", 0), ("mode", 1), ("connector", 0)], n_grid=3)
    np.testing.assert_allclose(surface.loss, modes.loss)
    ax = plot_volume_curve(connector, collapse_ratio=0.5)
    n = len(connector.log_volumes_)
    np.testing.assert_allclose(ax.lines[0].get_xydata(), np.c_[np.arange(1, n + 1), connector.log_volumes_])
    right = ax.right_ax
    np.testing.assert_allclose(right.lines[0].get_ydata(), connector.relative_heights_)
    np.testing.assert_allclose(right.lines[1].get_ydata(), connector.start_relative_heights_)
    assert right.lines[2].get_ydata()[0] == 0.5
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    if connector.collapse_at_ is not None:
        assert ax.lines[-1].get_xdata()[0] == connector.collapse_at_
        assert f"collapse at {connector.collapse_at_}" in legend
    assert ax.get_xlabel() == "connectors" and ax.get_ylabel() == "log volume of the complex"
    assert right.get_ylabel() == "relative height of the new connector"


def test_reliability_diagram_shows_counts():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([0.3] * 3, size=300)
    y = rng.integers(0, 3, size=300)
    ax = reliability_diagram(y, {"m": proba}, n_bins=10)
    (patch,) = ax.patches
    expected = np.histogram(proba.max(axis=1), bins=np.arange(11) / 10)[0] / 300
    np.testing.assert_allclose(patch.get_data().values, expected)
    assert "m: fraction of samples per bin" in [t.get_text() for t in ax.get_legend().get_texts()]
    markers = reliability_diagram(y, {"m": proba}, n_bins=10, counts="markers")
    sizes = markers.collections[0].get_sizes()
    filled = expected[expected > 0]
    np.testing.assert_allclose(sizes, 400 * filled / filled.max())
    with pytest.raises(ValueError, match="counts must be"):
        reliability_diagram(y, proba, counts="bars")


def test_shift_curve_bands_are_in_the_legend():
    results = pd.DataFrame(
        {
            "model": ["A"] * 4,
            "severity": [0, 1, 1, 1],
            "corruption": ["none", "noise", "blur", "shift"],
            "accuracy": [0.9, 0.7, 0.8, 0.6],
        }
    )
    ax = plot_shift_curve(results)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["A", "A: interquartile range over corruptions"]
    band = ax.collections[0].get_paths()[0].vertices
    at_one = band[band[:, 0] == 1.0, 1]  # the quartiles of 0.6, 0.7, 0.8
    assert at_one.max() == pytest.approx(0.75) and at_one.min() == pytest.approx(0.65)
