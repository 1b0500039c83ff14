"""Checks that need a GPU: fit on CUDA, then load and predict without one.

Run on a machine with a GPU::

    python benchmarks/gpu_checks.py --out DIR

It fits an ESPROClassifier (MLP and BatchNorm CNN) and an SPROConnector on
CUDA, checks that the caller's CPU and CUDA random states are unchanged,
pickles the models, then loads them in a subprocess that sees no GPU
(``CUDA_VISIBLE_DEVICES=""``) and compares its predictions with the GPU's.
Writes ``gpu_checks.json`` to DIR (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from skorch import NeuralNetClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment  # noqa: E402

from skspro import DeepEnsembleClassifier, ESPROClassifier, SPROConnector, default_estimator, save  # noqa: E402
from skspro.modules import SmallCNN  # noqa: E402

LOAD_ON_CPU = """
import pickle, sys, numpy as np, torch
from skorch import NeuralNetClassifier
from skspro import ESPROClassifier, SPROConnector, default_estimator, load
from skspro.modules import SmallCNN
assert not torch.cuda.is_available()
models = pickle.load(open(sys.argv[1], "rb"))
X = np.load(sys.argv[2])
out = {}
for name, model in models.items():
    out[name] = model.predict_proba(X.reshape(-1, 1, 8, 8) if name == "espro_cnn" else X)
# The pickle-free files written on the GPU, loaded here without one.
mlp = default_estimator().set_params(max_epochs=20)
cnn = NeuralNetClassifier(SmallCNN, module__n_classes=10, module__channels=16,
                          criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam)
for name, estimator in {"espro_mlp": ESPROClassifier(mlp), "espro_cnn": ESPROClassifier(cnn),
                        "connector": SPROConnector(mlp)}.items():
    model = load(sys.argv[4] + "/" + name + ".pt", estimator)
    out["file_" + name] = model.predict_proba(X.reshape(-1, 1, 8, 8) if name == "espro_cnn" else X)
np.savez(sys.argv[3], **out)
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    results: dict = {"environment": environment("cuda")}
    torch.manual_seed(123)
    cpu_state, cuda_state = torch.random.get_rng_state(), torch.cuda.get_rng_state()
    start = time.perf_counter()
    mlp = default_estimator().set_params(max_epochs=20)
    cnn = NeuralNetClassifier(
        SmallCNN,
        module__n_classes=10,
        module__channels=16,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=3e-3,
        max_epochs=10,
        train_split=None,
        iterator_train__shuffle=True,
    )
    models = {
        "espro_mlp": ESPROClassifier(
            mlp, n_members=2, n_vertices=2, vertex_epochs=3, device="cuda", random_state=0
        ).fit(X, y),
        "espro_cnn": ESPROClassifier(
            cnn, n_members=2, n_vertices=1, vertex_epochs=3, device="auto", random_state=0
        ).fit(X.reshape(-1, 1, 8, 8), y),
    }
    ensemble = DeepEnsembleClassifier(mlp, n_members=3, device="cuda", random_state=0).fit(X, y)
    models["connector"] = SPROConnector(
        FrozenEstimator(ensemble), n_connectors=2, connector_epochs=5, random_state=0
    ).fit(X, y)
    results["fit_seconds"] = time.perf_counter() - start
    results["devices"] = {name: [net.device for net in m.estimators_] for name, m in models.items()}
    results["cpu_rng_unchanged"] = bool(torch.equal(cpu_state, torch.random.get_rng_state()))
    results["cuda_rng_unchanged"] = bool(torch.equal(cuda_state, torch.cuda.get_rng_state()))
    gpu = {
        name: m.predict_proba(X if name != "espro_cnn" else X.reshape(-1, 1, 8, 8))
        for name, m in models.items()
    }
    model_path, data_path, pred_path = out / "models.pkl", out / "X.npy", out / "cpu_predictions.npz"
    with open(model_path, "wb") as file:
        pickle.dump(models, file)
    for name, model in models.items():
        save(model, out / f"{name}.pt")
    np.save(data_path, X)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_ON_CPU, str(model_path), str(data_path), str(pred_path), str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    results["cpu_load_returncode"] = done.returncode
    results["cpu_load_stderr_tail"] = done.stderr[-2000:]
    if done.returncode == 0:
        cpu = np.load(pred_path)
        results["max_abs_difference_gpu_vs_cpu"] = {
            name: float(np.abs(cpu[name] - gpu[name]).max()) for name in gpu
        }
        results["max_abs_difference_gpu_vs_cpu_from_skspro_file"] = {
            name: float(np.abs(cpu["file_" + name] - gpu[name]).max()) for name in gpu
        }
    for path in (model_path, data_path, pred_path, *(out / f"{name}.pt" for name in models)):
        path.unlink(missing_ok=True)
    (out / "gpu_checks.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results, indent=2, default=str))
    ok = (
        results["cpu_rng_unchanged"]
        and results["cuda_rng_unchanged"]
        and done.returncode == 0
        and max(results["max_abs_difference_gpu_vs_cpu"].values()) < 1e-4
        and max(results["max_abs_difference_gpu_vs_cpu_from_skspro_file"].values()) < 1e-4
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
