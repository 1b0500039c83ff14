"""Speed of ESPRO training and prediction against one network.

Measures, in one run on one device (medians of several repetitions):

* one vertex-training epoch vs one base-network epoch on the same data, for
  the ways a minibatch is spread over sampled networks (split / full, M);
* predict_proba with S sampled networks vs S times one network's forward at
  the same batch size (the FLOP limit), and the vectorised path vs a Python
  loop over the networks at small batches;
* on CUDA, peak GPU memory of predict_proba over many rows.

Usage::

    python benchmarks/speed.py --device cpu          # or cuda
    python benchmarks/speed.py --device cpu --quick  # seconds, a smoke run
    python benchmarks/speed.py --device cuda --only training  # the epoch ratios alone

Settings live in benchmarks/configs/speed.json; results go to
benchmarks/results/speed-<device>.{json,md} (or --out DIR).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import classifier_net, environment, markdown_table, median_time, write_results  # noqa: E402

import skspro._members as skspro_members  # noqa: E402
from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator  # noqa: E402
from skspro._bench import ready_networks  # noqa: E402
from skspro._training import VertexNet  # noqa: E402
from skspro.modules import MLP, SmallCNN  # noqa: E402
from skspro.simplex import forward_networks  # noqa: E402
from skspro.simplex.stacked import Unsupported  # noqa: E402

# (train_sampling, M, fast path): the default, more samples per step, the
# published recipe's cost (every sampled network on the whole minibatch), and
# the default through skorch's own step on the autograd formulation.
TRAIN_MODES = [("split", 1, True), ("split", 5, True), ("full", 5, True), ("split", 1, False)]


def make_data(spec: dict, n_rows: int, seed: int = 0):
    """Synthetic, learnable data: labels from a random linear teacher."""
    rng = np.random.default_rng(seed)
    shape = (spec["input_dim"],) if spec["kind"] == "mlp" else tuple(spec["image"])
    X = rng.standard_normal((n_rows, *shape)).astype(np.float32)
    teacher = rng.standard_normal((int(np.prod(shape)), 10)).astype(np.float32)
    y = (X.reshape(n_rows, -1) @ teacher).argmax(1)
    return X, y


def make_net(spec: dict, settings: dict, device: str):
    if spec["kind"] == "mlp":
        module, params = MLP, {"input_dim": spec["input_dim"], "hidden_units": spec["hidden_units"]}
    else:
        module = SmallCNN
        params = {
            "in_channels": spec["image"][0],
            "channels": spec["channels"],
            "batch_norm": spec["batch_norm"],
        }
    return classifier_net(
        module,
        lr=1e-3,
        max_epochs=settings["base_epochs"],
        batch_size=settings["batch_size"],
        device=device,
        **params,
    )


def epoch_time(history) -> float:
    """Median epoch duration, leaving out the first (warm-up) epoch."""
    durations = list(history[:, "dur"])
    return statistics.median(durations[1:] if len(durations) > 1 else durations)


class _ReferenceVertexNet(VertexNet):
    """Vertex training through skorch's own step (the reference the fast path is tested against)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, fast=False, **kwargs)


def bench_training(name, spec, settings, device, X, y):
    rows, fitted = [], None
    for sampling, m, fast in TRAIN_MODES:
        skspro_members.VertexNet = VertexNet if fast else _ReferenceVertexNet
        try:
            model = ESPROClassifier(
                make_net(spec, settings, device),
                n_members=1,
                n_vertices=1,
                vertex_epochs=settings["vertex_epochs"],
                n_train_samples=m,
                train_sampling=sampling,
                n_samples=settings["n_samples"],
                random_state=0,
            ).fit(X, y)
        finally:
            skspro_members.VertexNet = VertexNet
        base = epoch_time(model.estimators_[0].history)
        vertex = epoch_time(model.vertex_histories_[0][0])
        rows.append(
            {
                "model": name,
                "train_sampling": sampling,
                "M": m,
                "step": "fast" if fast else "autograd",
                "base_epoch_s": base,
                "vertex_epoch_s": vertex,
                "ratio": vertex / base,
                "vertex_ce_loss": float(model.vertex_histories_[0][0][-1, "ce_loss"]),
            }
        )
        print(rows[-1], flush=True)
        if sampling == "split" and m == 1 and fast:
            fitted = model
    return rows, fitted


def bench_prediction(name, model, settings, device, X, batches=None):
    """predict_proba over all of ``model``'s sampled networks against a Python loop over them.

    The paths of :func:`~skspro.simplex.forward_networks` are timed on the
    fitted networks object (its single part: one member, or all members
    stacked), each on its own; ``predict_proba`` is the whole call
    (validation, every path decision, the float64 softmax and the mean).
    """
    networks = model.networks_
    (part,) = networks._parts
    module, params, buffers, batched = networks.module, part.params, part.buffers, part.batched
    one = {n: p[0] for n, p in params.items()}
    one_buffers = {n: (b[0] if n in batched else b) for n, b in buffers.items()}
    ready = ready_networks(model)
    rows = []
    for batch in batches or settings["predict_batches"]:
        x_np = X[np.arange(batch) % len(X)]
        x = torch.as_tensor(x_np, device=device)
        repeats = settings["repeats"] if batch <= 4096 else max(2, settings["repeats"] // 2)

        def single(x=x):
            with torch.no_grad():
                functional_call(module, (one, one_buffers), (x,))

        def path(method, x=x):
            def run():
                with torch.no_grad():
                    forward_networks(module, params, buffers, x, batched_buffers=batched, method=method)

            return run

        def python_loop(x=x):
            with torch.no_grad():
                for network in ready:
                    network(x)

        def python_loop_proba(x=x):
            # What predict_proba returns, computed the plain way: the mean of
            # every network's float64 softmax.
            with torch.no_grad():
                total = sum(torch.softmax(network(x).to(torch.float64), -1) for network in ready)
                return (total / len(ready)).cpu().numpy()

        times = {"one_network_s": median_time(single, device, repeats)}
        times["python_loop_s"] = median_time(python_loop, device, repeats)
        times["python_loop_proba_s"] = median_time(python_loop_proba, device, repeats)
        for label, method in (("functional_loop_s", "loop"), ("stacked_s", "stacked"), ("vmap_s", "vmap")):
            if batch > 4096 and method != "loop":
                times[label] = float("nan")  # the auto path never takes them at this size
                continue
            try:
                times[label] = median_time(path(method), device, repeats)
            except (Unsupported, RuntimeError) as error:  # recorded as NaN, the reason printed
                print(f"{method} path failed at batch {batch}: {error}", flush=True)
                times[label] = float("nan")
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
        times["predict_proba_s"] = median_time(lambda x_np=x_np: model.predict_proba(x_np), device, repeats)
        rows.append(
            {
                "model": name,
                "batch": batch,
                "S": networks.n_networks,
                **times,
                "flop_limit_s": networks.n_networks * times["one_network_s"],
                "predict_proba_over_flop_limit": times["predict_proba_s"]
                / (networks.n_networks * times["one_network_s"]),
                "python_loop_over_predict_proba": times["python_loop_s"] / times["predict_proba_s"],
                "python_proba_loop_over_predict_proba": times["python_loop_proba_s"]
                / times["predict_proba_s"],
                "python_loop_over_stacked": times["python_loop_s"] / times["stacked_s"],
            }
        )
        print(rows[-1], flush=True)
    return rows


def prediction_only(settings, device) -> list[dict]:
    """The prediction table alone, on the models of ``settings["prediction_models"]``:
    one member with ``n_samples`` networks each, trained briefly (speed does not
    depend on how well)."""
    rows = []
    for name, spec in settings["prediction_models"].items():
        X, y = make_data(spec, settings["n_rows"])
        net = make_net(spec, {**settings, "base_epochs": 1}, device)
        model = ESPROClassifier(
            net, n_members=1, n_vertices=2, vertex_epochs=1, n_samples=settings["n_samples"], random_state=0
        ).fit(X, y)
        rows += bench_prediction(name, model, settings, device, X, settings["prediction_batches"])
    return rows


def bench_fit_time(settings, device) -> list[dict]:
    """Full fit time of ESPRO vs DeepEnsembleClassifier with their defaults (digits, default template)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rows = []
    for label, make in (
        ("DeepEnsembleClassifier()", lambda: DeepEnsembleClassifier(default_estimator(), random_state=0)),
        ("ESPROClassifier()", lambda: ESPROClassifier(default_estimator(), random_state=0)),
    ):
        times = []
        for _ in range(settings.get("fit_repeats", 1)):
            model = make().set_params(estimator__device=device)
            start = time.perf_counter()
            model.fit(X, y)
            times.append(time.perf_counter() - start)
        rows.append(
            {"model": label, "fit_s": statistics.median(times), "networks_at_predict": model.n_networks_}
        )
        print(rows[-1], flush=True)
    rows[1]["over_deep_ensemble"] = rows[1]["fit_s"] / rows[0]["fit_s"]
    return rows


def bench_memory(name, model, settings, device, X):
    if not device.startswith("cuda") or "memory_rows" not in settings:
        return []
    n_rows = settings["memory_rows"]
    x_np = X[np.arange(n_rows) % len(X)]
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    model.predict_proba(x_np)
    peak = torch.cuda.max_memory_allocated() - base
    n_params = model.simplexes_[0].n_params
    row = {
        "model": name,
        "rows": n_rows,
        "S": model.n_networks_,
        "peak_extra_MiB": peak / 2**20,
        "all_outputs_MiB": model.n_networks_ * n_rows * len(model.classes_) * 8 / 2**20,
        "one_network_params_MiB": n_params * 4 / 2**20,
    }
    print(row, flush=True)
    return [row]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--only",
        choices=["all", "training", "prediction"],
        default="all",
        help="training: the epoch ratios alone; prediction: predict_proba vs a Python loop alone",
    )
    parser.add_argument("--out", default=None, help="folder for results (default benchmarks/results)")
    args = parser.parse_args(argv)
    config = json.loads((Path(__file__).resolve().parent / "configs" / "speed.json").read_text())
    settings = dict(config["cuda" if args.device.startswith("cuda") else "cpu"])
    if args.quick:
        settings.update(
            n_rows=256, base_epochs=2, vertex_epochs=2, n_samples=4, predict_batches=[1, 32], repeats=2
        )
        settings["models"] = {"mlp": {"kind": "mlp", "input_dim": 16, "hidden_units": [32]}}
    training, prediction, memory = [], [], []
    training_only = args.only == "training"
    if args.quick:
        settings.update(prediction_batches=[1, 32], prediction_models=settings["models"])
    if args.only == "prediction":
        prediction = prediction_only(settings, args.device)
    models = {} if args.only == "prediction" else settings["models"]
    fit_times = [] if args.quick or args.only != "all" else bench_fit_time(settings, args.device)
    for name, spec in models.items():
        X, y = make_data(spec, settings["n_rows"])
        rows, fitted = bench_training(name, spec, settings, args.device, X, y)
        training += rows
        if training_only:
            continue
        prediction += bench_prediction(name, fitted, settings, args.device, X)
        memory += bench_memory(name, fitted, settings, args.device, X)
    env = environment(args.device)
    payload = {
        "environment": env,
        "settings": settings,
        "training": training,
        "prediction": prediction,
        "memory": memory,
        "fit_time": fit_times,
    }
    markdown = f"# Speed benchmark ({args.device})\n\n" + "\n".join(f"- {k}: {v}" for k, v in env.items())
    markdown += "\n"
    if training:
        markdown += "\n## Vertex epoch vs base epoch\n\n" + markdown_table(
            training, ["model", "train_sampling", "M", "step", "base_epoch_s", "vertex_epoch_s", "ratio"]
        )
    if prediction:
        markdown += "\n## Prediction with S sampled networks\n\n" + markdown_table(
            prediction,
            [
                "model",
                "batch",
                "S",
                "one_network_s",
                "flop_limit_s",
                "python_loop_s",
                "functional_loop_s",
                "vmap_s",
                "stacked_s",
                "predict_proba_s",
                "predict_proba_over_flop_limit",
                "python_loop_over_predict_proba",
                "python_loop_proba_s",
                "python_proba_loop_over_predict_proba",
            ],
        )
    if fit_times:
        markdown += "\n## Full fit with the defaults (digits, default template)\n\n" + markdown_table(
            fit_times, ["model", "fit_s", "networks_at_predict", "over_deep_ensemble"]
        )
    if memory:
        markdown += "\n## Peak GPU memory of predict_proba\n\n" + markdown_table(
            memory, ["model", "rows", "S", "peak_extra_MiB", "all_outputs_MiB", "one_network_params_MiB"]
        )
    suffix = "quick" if args.quick else args.device.replace(":", "")
    suffix += f"-{args.only}" if args.only != "all" else ""
    name = f"speed-{suffix}"
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
        (out / f"{name}.md").write_text(markdown)
        paths = (out / f"{name}.json", out / f"{name}.md")
    else:
        paths = write_results(name, payload, markdown)
    print(markdown)
    print("written:", *paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
