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

__all__ = ["epoch_ratio", "median_time", "ready_networks", "run_benchmark", "speed_reading"]


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


def speed_reading(seconds: float, reference_seconds: float) -> str:
    """How fast something taking ``seconds`` is against ``reference_seconds``, in words that cannot mislead.

    Always a ratio of at least 1: ``"1.70x slower"`` (never ``"0.59x
    faster"``), ``"2.30x faster"``, or ``"as fast"`` within 0.5 %.

    Examples
    --------
    >>> speed_reading(1.7, 1.0)
    '1.70x slower'
    >>> speed_reading(1.0, 2.3)
    '2.30x faster'
    """
    if seconds <= 0 or reference_seconds <= 0:
        raise ValueError(f"Times must be positive; got {seconds!r} and {reference_seconds!r}.")
    ratio = reference_seconds / seconds
    if abs(ratio - 1.0) < 0.005:
        return "as fast"
    return f"{ratio:.2f}x faster" if ratio > 1 else f"{1 / ratio:.2f}x slower"


def _fit_defaults(X, y, device: str, quick: bool, random_state: int, progress) -> tuple[list[dict], object]:
    """Fit ``DeepEnsembleClassifier()`` and ``ESPROClassifier()``; rows of their fit times, and ESPRO."""
    from sklearn.base import clone

    from . import DeepEnsembleClassifier, ESPROClassifier, default_estimator

    template = default_estimator().set_params(**({"max_epochs": 3} if quick else {}))
    vertex = {"vertex_epochs": 2, "n_samples": 4} if quick else {}
    models = {
        "DeepEnsembleClassifier()": DeepEnsembleClassifier(template, random_state=random_state),
        "ESPROClassifier()": ESPROClassifier(template, random_state=random_state, **vertex),
    }
    # A throwaway fit first, so that neither timed fit pays the one-time start-up (lazy imports,
    # first-call set-up in torch and skorch).
    warm_up = DeepEnsembleClassifier(clone(template).set_params(max_epochs=1), n_members=1, random_state=0)
    warm_up.set_params(device=device).fit(X[:256], y[:256])
    times = {}
    for name, model in models.items():
        progress.stage(f"fitting {name}")
        model.set_params(device=device)
        start = time.perf_counter()
        model.fit(X, y)
        times[name] = time.perf_counter() - start
    rows = [
        {"measurement": f"fit time of {name} on digits", "value": t, "unit": "s", "reading": ""}
        for name, t in times.items()
    ]
    espro_time, ensemble_time = times["ESPROClassifier()"], times["DeepEnsembleClassifier()"]
    rows.append(
        {
            "measurement": "fit time of ESPROClassifier() / DeepEnsembleClassifier()",
            "value": espro_time / ensemble_time,
            "unit": "ratio",
            "reading": f"ESPROClassifier() fits {speed_reading(espro_time, ensemble_time)}",
        }
    )
    ratio = epoch_ratio(models["ESPROClassifier()"])
    rows.append(
        {
            "measurement": "vertex epoch / member epoch",
            "value": ratio,
            "unit": "ratio",
            "reading": f"a vertex epoch costs {ratio:.2f} member epochs",
        }
    )
    return rows, models["ESPROClassifier()"]


def _prediction_rows(espro, X, quick: bool, progress) -> list[dict]:
    """predict_proba against a Python loop over the same sampled networks, at three batch sizes."""
    # What a user without skspro would run: every sampled network as a ready
    # module, called in turn (on its member's device).
    device_used = espro.networks_.device
    networks = [(network, device_used) for network in ready_networks(espro)]
    devices = {device_used}
    repeats = 3 if quick else 7
    rows = []
    for batch in (1, 32, 1024):
        progress.stage(f"prediction, batch {batch}")
        x_np = X[np.arange(batch) % len(X)]
        xs = {d: torch.as_tensor(x_np, device=d) for d in devices}

        def loop(xs=xs):
            with torch.no_grad():
                for network, d in networks:
                    network(xs[d])

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
                "value": t_predict / t_loop,
                "unit": "time ratio",
                "reading": f"predict_proba {speed_reading(t_predict, t_loop)}",
            }
        )
    return rows


def run_benchmark(device: str = "cpu", *, quick: bool = False, random_state: int = 0, verbose: int = 0):
    """Fit the default estimators on digits and time training and prediction.

    Parameters
    ----------
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    quick : bool, default=False
        Few epochs (seconds), for smoke tests; the ratios are then noisy.
    random_state : int, default=0
    verbose : int, default=0
        Show a progress bar over the stages (on stderr) when > 0.

    Returns
    -------
    pandas.DataFrame
        One row per measurement: its ``value``, ``unit`` and a ``reading``
        in words (``"1.70x slower"``, never a ratio below 1 called
        "faster"). Time ratios are the measured time over the reference's.
    """
    import pandas as pd
    from sklearn.datasets import load_digits

    from ._progress import StageProgress

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    with StageProgress(5, verbose=verbose, desc="skspro benchmark") as progress:
        rows, espro = _fit_defaults(X, y, device, quick, random_state, progress)
        rows += _prediction_rows(espro, X, quick, progress)
    return pd.DataFrame(rows).set_index("measurement")
