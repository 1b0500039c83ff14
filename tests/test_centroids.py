"""The single-network path: ESPRO predicting with its simplexes' centroids."""

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

from skspro import ESPROClassifier, default_estimator


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


def fitted(batch_norm=False, n_vertices=2):
    template = default_estimator().set_params(
        max_epochs=6, module__hidden_units=(16,), module__batch_norm=batch_norm, lr=1e-2
    )
    return ESPROClassifier(
        template, n_members=2, n_vertices=n_vertices, vertex_epochs=2, n_samples=4, reg=1e-2, random_state=0
    )


def centroid_module(model, member, X=None):
    """The member's centroid as an ordinary module; BatchNorm re-estimated on X in the net's batches."""
    net = copy.deepcopy(model.networks_.module)
    simplex = model.simplexes_[member]
    with torch.no_grad():
        for name, value in simplex.centroid().items():
            net.get_parameter(name).copy_(value)
        if X is not None:
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm1d):
                    m.reset_running_stats()
                    m.momentum = None
                    m.train()
            for start in range(0, len(X), 64):
                net(torch.as_tensor(X[start : start + 64]))
    return net.eval()


def test_centroids_against_a_direct_forward(iris):
    X, y = iris
    model = fitted().fit(X, y)
    with torch.no_grad():
        expected = np.mean(
            [
                torch.softmax(centroid_module(model, m)(torch.as_tensor(X)).double(), -1).numpy()
                for m in (0, 1)
            ],
            axis=0,
        )
    np.testing.assert_allclose(model.predict_proba_centroids(X), expected, atol=1e-6)
    assert model.centroid_networks().n_networks == 2
    labels = model.predict_centroids(X)
    np.testing.assert_array_equal(labels, model.classes_[expected.argmax(1)])
    assert (labels == y).mean() > 0.8


def test_without_vertices_the_centroid_is_the_member(iris):
    X, y = iris
    model = fitted(n_vertices=0).fit(X, y)
    np.testing.assert_allclose(model.predict_proba_centroids(X), model.predict_proba(X), atol=1e-12)


def test_batchnorm_statistics_of_the_centroids(iris):
    X, y = iris
    model = fitted(batch_norm=True).fit(X, y)
    with torch.no_grad():
        exact = np.mean(
            [
                torch.softmax(centroid_module(model, m, X)(torch.as_tensor(X)).double(), -1).numpy()
                for m in (0, 1)
            ],
            axis=0,
        )
    np.testing.assert_allclose(model.predict_proba_centroids(X, norm_X=X), exact, atol=1e-5)
    # the default (mean of the sampled networks' statistics) is close to the re-estimated one
    approx = model.predict_proba_centroids(X)
    assert np.abs(approx - exact).max() < 0.05
    group = model.centroid_networks().groups[0]
    sampled = model.networks_.groups[0].norm_buffers
    for name, value in group.norm_buffers.items():
        if value.is_floating_point():
            torch.testing.assert_close(value[0], sampled[name].mean(0))
