"""One fitted model, many threads: every concurrent call gives exactly the serial answer.

Web services and joblib's threading backend share one fitted estimator. The
prediction path must not share mutable state between calls: 0.1.0 swapped
parameters into the one module with ``functional_call`` above 256 rows and
returned other networks' probabilities under threads, without an error.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from skspro import ESPROClassifier, SPROConnector, default_estimator
from skspro.modules import SmallCNN


class Residual(nn.Module):
    """A custom forward (not a chain of layers): predicted through vmap and
    ``functional_call``, the paths that swap parameters into a module."""

    def __init__(self, input_dim=64, n_classes=10, width=16):
        super().__init__()
        self.inp, self.hidden, self.out = (
            nn.Linear(input_dim, width),
            nn.Linear(width, width),
            nn.Linear(width, n_classes),
        )

    def forward(self, x):
        h = torch.relu(self.inp(x))
        return self.out(h + torch.relu(self.hidden(h)))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def _template(**params):
    return default_estimator().set_params(**{"max_epochs": 2, "lr": 3e-3, **params})


def _fitted(name, X, y):
    small = dict(n_members=2, n_vertices=1, vertex_epochs=1, n_samples=3, random_state=0)
    if name == "batchnorm cnn":
        images = X.reshape(-1, 1, 8, 8)
        cnn = _template(module=SmallCNN, module__channels=4, module__n_classes=10)
        return ESPROClassifier(cnn, **small).fit(images[:600], y[:600]), images
    if name == "connector":
        model = SPROConnector(
            _template(module__hidden_units=(16,)), n_modes=2, n_connectors=1, connector_epochs=1, n_samples=3
        )
        return model.fit(X[:600], y[:600]), X
    module = {"module": Residual} if name == "custom module" else {"module__hidden_units": (16,)}
    return ESPROClassifier(_template(**module), **small).fit(X[:600], y[:600]), X


@pytest.mark.parametrize("name", ["mlp", "custom module", "batchnorm cnn", "connector"])
def test_concurrent_predictions_equal_the_serial_ones(digits, name):
    X, y = digits
    model, inputs = _fitted(name, X, y)
    rng = np.random.RandomState(0)
    # Batches on every path: one row, small (wide forward / vmap), large
    # (network by network), and larger than one row chunk is not needed here.
    batches = [inputs[start : start + size] for size in (1, 7, 300, 1000) for start in rng.randint(0, 700, 3)]
    methods = ("predict_proba", "predict", "predict_proba_networks")
    serial = {(i, m): getattr(model, m)(batch) for i, batch in enumerate(batches) for m in methods}
    calls = [(i, m) for i in range(len(batches)) for m in methods] * 4
    rng.shuffle(calls)

    def run(call):
        i, method = call
        return call, getattr(model, method)(batches[i])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, calls))
    wrong = [call for call, result in results if not np.array_equal(result, serial[call])]
    assert not wrong, f"{len(wrong)} of {len(results)} concurrent calls differ from the serial answer"
