"""Speed measurements shared by ``skspro benchmark`` and ``benchmarks/``.

``skspro benchmark`` answers, on the user's own hardware, the questions the
speed benchmark answers on ours: what does a vertex epoch cost against a
member epoch, what does ``ESPROClassifier()`` cost against
``DeepEnsembleClassifier()``, and how fast is prediction with the sampled
networks against a Python loop over ready networks.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["epoch_ratio", "median_time", "ready_networks", "run_benchmark"]


def synchronize(device: str | torch.device) -> None:
    """Wait for queued GPU work (no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(torch.device(device))


def median_time(
    fn: Callable[[], object], device: str | torch.device, repeats: int = 5, warmup: int = 1
) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def epoch_ratio(model) -> float:
    """Cost of one vertex epoch in member epochs, measured during ``model``'s fit.

    Medians of the per-epoch durations skorch records (over all members, and
    over all vertex epochs), so that a burst of other load moves it little.
    """
    member_epochs = np.concatenate([net.history[:, "dur"] for net in model.estimators_])
    vertex_epochs = np.concatenate(
        [history[:, "dur"] for histories in model.vertex_histories_ for history in histories]
    )
    if not len(vertex_epochs):
        raise ValueError("The model has no trained vertices (n_vertices=0).")
    return float(np.median(vertex_epochs) / np.median(member_epochs))


def ready_networks(model) -> list[torch.nn.Module]:
    """A fitted model's sampled networks as ordinary modules (what a user without skspro would run)."""
    return model.networks_.to_modules()


def run_benchmark(device: str = "cpu", *, quick: bool = False, random_state: int = 0):
    """Fit the default estimators on digits and time training and prediction.

    Parameters
    ----------
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    quick : bool, default=False
        Few epochs (seconds), for smoke tests; the ratios are then noisy.
    random_state : int, default=0

    Returns
    -------
    pandas.DataFrame
        One row per measurement: its value and what it compares.
    """
    import pandas as pd
    from sklearn.datasets import load_digits

    from . import DeepEnsembleClassifier, ESPROClassifier, default_estimator

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    epochs = {} if not quick else {"max_epochs": 3}
    template = default_estimator().set_params(**epochs)
    vertex = {} if not quick else {"vertex_epochs": 2, "n_samples": 4}
    rows = []
    fitted = {}
    for name, model in (
        ("DeepEnsembleClassifier()", DeepEnsembleClassifier(template, random_state=random_state)),
        ("ESPROClassifier()", ESPROClassifier(template, random_state=random_state, **vertex)),
    ):
        model.set_params(device=device)
        start = time.perf_counter()
        fitted[name] = model.fit(X, y)
        elapsed = time.perf_counter() - start
        rows.append({"measurement": f"fit time of {name} on digits", "value": elapsed, "unit": "s"})
    espro = fitted["ESPROClassifier()"]
    rows.append(
        {
            "measurement": "fit time of ESPROClassifier() / DeepEnsembleClassifier()",
            "value": rows[1]["value"] / rows[0]["value"],
            "unit": "ratio",
        }
    )
    rows.append({"measurement": "vertex epoch / member epoch", "value": epoch_ratio(espro), "unit": "ratio"})
    # What a user without skspro would run: every sampled network as a ready
    # module, called in turn (on its member's device).
    device_used = espro.networks_.device
    networks = [(network, device_used) for network in ready_networks(espro)]
    devices = {device_used}
    for batch in (1, 32, 1024):
        x_np = X[np.arange(batch) % len(X)]
        xs = {d: torch.as_tensor(x_np, device=d) for d in devices}

        def loop(xs=xs):
            with torch.no_grad():
                for network, d in networks:
                    network(xs[d])

        repeats = 3 if quick else 7
        t_loop = median_time(loop, next(iter(devices)), repeats=repeats)
        t_predict = median_time(
            lambda x_np=x_np: espro.predict_proba(x_np), next(iter(devices)), repeats=repeats
        )
        rows.append(
            {
                "measurement": (
                    f"predict_proba with {len(networks)} sampled networks vs a Python loop over them, "
                    f"batch {batch}"
                ),
                "value": t_loop / t_predict,
                "unit": "x faster",
            }
        )
    return pd.DataFrame(rows).set_index("measurement")
