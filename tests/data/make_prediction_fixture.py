"""Write the stored predictions that tests/test_prediction_fixture.py compares against.

Run from the repository root with ``python tests/data/make_prediction_fixture.py``.
It fits small models of the three estimators with fixed seeds, stores their
predictions (``prediction_fixture.npz``) and saves them with ``skspro.save``
(``fixture_*.skspro``): the test refits the same models and loads the files
with the current code and checks the predictions bit for bit on a CPU with
the kernels it was written on (``cpu_capability``: SIMD capability and CPU vendor, stored with it), and to
within 1e-5 elsewhere. Regenerate it only on purpose (a change of numerics,
or to move it to other kernels after checking that the old code gives the new
file's numbers there), and say so in the commit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent


def data() -> dict[str, np.ndarray]:
    """Tabular rows (wine, standardised) and digits images, both with more
    than 256 test rows so every prediction path is taken."""
    from sklearn.datasets import load_digits, load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    digits = load_digits()
    images = (digits.images[:, None] / 16.0).astype(np.float32)
    rng = np.random.RandomState(0)
    return {
        "X": X,
        "y": y,
        "X_big": np.concatenate([X, X + 0.1 * rng.randn(*X.shape).astype(np.float32)] * 2),
        "images": images[:400],
        "image_labels": digits.target[:400],
    }


def models() -> dict:
    """Unfitted estimators, their training data key and the prediction inputs."""
    from skspro import DeepEnsembleClassifier, ESPROClassifier, SPROConnector, default_estimator
    from skspro.modules import SmallCNN

    mlp = default_estimator().set_params(max_epochs=4, module__hidden_units=(16,), lr=3e-3)
    cnn = default_estimator().set_params(
        module=SmallCNN, module__channels=4, module__n_classes=10, max_epochs=2, lr=3e-3
    )
    return {
        "deep_ensemble": DeepEnsembleClassifier(mlp, n_members=3, random_state=1),
        # vertex_weight_decay=0.0: the recipe the fixture was stored with (before "auto")
        "espro": ESPROClassifier(
            mlp,
            n_members=2,
            n_vertices=2,
            vertex_epochs=2,
            n_samples=5,
            random_state=2,
            vertex_weight_decay=0.0,
        ),
        "espro_cnn_bn": ESPROClassifier(
            cnn, n_members=2, n_vertices=1, vertex_epochs=1, n_samples=3, random_state=3
        ),
        "connector": SPROConnector(
            mlp, n_modes=2, n_connectors=2, connector_epochs=2, n_samples=4, random_state=4
        ),
    }


def fit(name: str, model, arrays: dict):
    if name == "espro_cnn_bn":
        return model.fit(arrays["images"], arrays["image_labels"])
    return model.fit(arrays["X"], arrays["y"])


def inputs(name: str, arrays: dict) -> dict[str, np.ndarray]:
    if name == "espro_cnn_bn":
        return {"small": arrays["images"][:5], "large": arrays["images"]}
    return {"small": arrays["X"][:5], "large": arrays["X_big"]}


def predictions(model, xs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, x in xs.items():
        out[f"proba_{key}"] = model.predict_proba(x)
        out[f"networks_{key}"] = model.predict_proba_networks(x)
    return out


def cpu_capability() -> str:
    """The SIMD kernels torch runs on this CPU and the CPU's vendor (e.g. "AVX512 GenuineIntel").

    Float results are bit-reproducible only on the same kernels, and the same
    capability is not enough: torch's math libraries pick their kernels by vendor
    too (measured: AVX512 on an AuthenticAMD CPU differs by up to 1e-8 from the
    fixture written on AVX512, same versions of every library).
    """
    return f"{torch.backends.cpu.get_cpu_capability()} {_cpu_vendor()}"


def _cpu_vendor() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: the vendor is unknown, so never "the same kernels"
        return "unknown"
    for line in cpuinfo.splitlines():
        if line.startswith("vendor_id"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    from skspro import save

    torch.set_num_threads(1)  # as the test suite (tests/conftest.py)
    arrays = data()
    stored = {}
    for name, model in models().items():
        fit(name, model, arrays)
        for key, value in predictions(model, inputs(name, arrays)).items():
            stored[f"{name}/{key}"] = value
        save(model, HERE / f"fixture_{name}.skspro")
    stored["cpu_capability"] = np.array(cpu_capability())
    np.savez_compressed(HERE / "prediction_fixture.npz", **stored)
    print(f"wrote {len(stored)} arrays and {len(models())} files to {HERE}")


if __name__ == "__main__":
    main()
