"""What a user sees with the defaults: ESPROClassifier() vs DeepEnsembleClassifier() (issue 11).

For every data set and seed (paired: one train / validation / test split per
seed, shared by every method; the methods fit on the training part only) the
same template (the default MLP sized for the data, or a given CNN) is trained
by:

* ``DE-1`` .. ``DE-12``: one ``DeepEnsembleClassifier(n_members=12)`` fit; the
  ensemble of its first k members is ``DE-k`` (the deep-ensemble curve; cost:
  the first k members' training seconds). Member seeds are drawn in order
  from ``random_state``, so the first ``n_members`` members of this fit are
  exactly the members of ``DeepEnsembleClassifier()`` (checked at run time on
  the seeds): the row ``DE default`` is that prefix, not a second fit.
* ``ESPRO default``: ``ESPROClassifier(template, random_state=seed)``, its
  measured ``fit_time_``. Its default ``vertex_weight_decay="holdout"``
  trains a probe member on a half of the training part, which chooses the
  vertex decay on the other half; ``fit_time_`` includes the probe, so the
  comparison with the default deep ensemble counts it, and the at-cost table
  sets it against the DE-k of its measured cost.
* ``ESPRO auto``: ``ESPROClassifier(template, vertex_weight_decay="auto")``,
  the earlier default (no probe: the decay by module type alone).
* ``DE early stopping`` / ``ESPRO early stopping``: the same with
  ``early_stopping=True`` when the estimators have that option (the held-out
  split is carved from the training part, so its cost is counted by
  construction); skipped otherwise.
* ``snapshot`` (Huang et al., 2017): one run of the template for as many
  epochs as the default deep ensemble trains in all (5 x 40 with the
  defaults), the learning rate restarted ``cycles`` times and annealed by a
  cosine to zero within each cycle (per batch); a network saved at the end of
  each cycle.
* ``FGE`` (fast geometric ensembling, Garipov et al., 2018): one member
  trained as the template trains it, then, for the rest of the same total
  epochs, a triangular cyclic learning rate (template lr -> ``low_lr_fraction``
  x lr -> template lr over ``cycle_epochs``), a network collected at each
  cycle's low point.

Snapshot and FGE are small baselines inside this benchmark, not public
estimators: they are here to place ESPRO against the cheap single-run
ensembles of the literature at equal cost; they have no simplex, no
validation option and no persistence, and making them estimators would add
public API that the issue does not ask for. Their BatchNorm statistics are
the running ones at the moment a network is saved.

Per method: measured training seconds and epochs; test NLL, error, ECE and
Brier, raw and after temperature scaling fitted on the validation split
(which no method trained on); the deep-ensemble equivalent (DEE, Ashukha et
al. 2020) on the temperature-scaled DE-k curve of the same seed; for ESPRO
the mean test NLL of its sampled networks over that of its members. Under
shift (Gaussian input noise at every data set; the corruptions of
:func:`skspro.datasets.corrupt_images` on the image tasks): NLL, ECE and error
per severity, raw and temperature-scaled (temperature from the clean
validation split).

"Not worse beyond seed noise" (the issue's rule, used for every comparison):
the mean paired difference (method - reference) is at most +1 % of the
reference's mean, and the method is at least as good on at least 2 of 5
seeds. "Strictly better": the mean paired difference is negative and the
method is better on at least 3 of 5 seeds. (With other seed counts: 40 % and
60 % of the seeds, rounded up.)

Usage::

    python benchmarks/defaults.py                       # the full suite, 5 seeds (projected 15-25 min)
    python benchmarks/defaults.py --datasets digits_mlp,digits_cnn --seeds 1
    python benchmarks/defaults.py --quick               # a smoke run (seconds)
    python benchmarks/defaults.py --render              # rebuild the Markdown from the JSON

Settings: benchmarks/configs/defaults.json. Results:
benchmarks/results/defaults.{json,md} (``defaults-quick`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback, LRScheduler
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, write_results  # noqa: E402
from _defaults_report import report  # noqa: E402
from quality import as_model_input as model_input  # noqa: E402
from quality import load, scaled, scores, shift_sets, temperature  # noqa: E402

from skspro import DeepEnsembleClassifier, ESPROClassifier, default_estimator  # noqa: E402
from skspro._inputs import draw_seeds, member_template  # noqa: E402
from skspro.metrics import negative_log_likelihood  # noqa: E402
from skspro.modules import SmallCNN  # noqa: E402

CONFIG = Path(__file__).resolve().parent / "configs" / "defaults.json"

# ------------------------------------------------------------------ modules


class DropoutCNN(nn.Module):
    """:class:`~skspro.modules.SmallCNN` without BatchNorm, with dropout on its last feature maps."""

    def __init__(self, in_channels: int = 1, n_classes: int = 10, channels: int = 16, dropout: float = 0.25):
        super().__init__()
        cnn = SmallCNN(in_channels, n_classes, channels, batch_norm=False)
        self.features, self.dropout, self.head = cnn.features, nn.Dropout(dropout), cnn.head

    def forward(self, x):
        return self.head(self.dropout(self.features(x)))

    def forward_chain(self):
        return [self.features, self.dropout, self.head]


class Conv1dNet(nn.Module):
    """Two Conv1d blocks (kernel 5, ReLU, max-pool 2; no BatchNorm) and a linear head."""

    def __init__(self, in_channels: int = 1, n_classes: int = 10, channels: int = 16, length: int = 40):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, channels, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(channels, 2 * channels, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * channels * (length // 4), n_classes))

    def forward(self, x):
        return self.head(self.features(x))

    def forward_chain(self):
        return [self.features, self.head]


# ------------------------------------------------------------------ data


def evaluation_sets(spec: dict, shift: dict, X_train, X_val, X_test, seed: int) -> dict:
    """Validation, test and shifted test inputs (noise on every data set, corruptions on images)."""
    sets = {"val": X_val, "test": X_test, **shift_sets(spec, shift, X_train, X_test, seed)}
    return {key: model_input(spec, X) for key, X in sets.items()}


# ------------------------------------------------------------------ templates and baselines


def template(spec: dict, input_shape: tuple, n_classes: int, max_epochs: int | None):
    """The skorch template every method of the data set trains (the defaults but for the module)."""
    if spec.get("model") is None:
        net = member_template(None, input_shape, n_classes, "benchmark")  # what estimator=None trains
    else:
        net = default_estimator()
        modules = {"cnn": DropoutCNN if "dropout" in spec else SmallCNN, "cnn1d": Conv1dNet}
        params = {"in_channels": 1, "n_classes": n_classes, "channels": spec["channels"]}
        if spec["model"] == "cnn":
            params.update(
                {"dropout": spec["dropout"]} if "dropout" in spec else {"batch_norm": spec["batch_norm"]}
            )
        else:
            params["length"] = input_shape[-1]
        net.set_params(module=modules[spec["model"]], **{f"module__{k}": v for k, v in params.items()})
    if max_epochs is not None:
        net.set_params(max_epochs=max_epochs)
    return net


class CollectWeights(Callback):
    """Keep a copy of the module's state after the given (1-based) epochs."""

    def __init__(self, epochs):
        self.epochs = epochs

    def initialize(self):
        self.states_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) in set(self.epochs):
            self.states_.append(copy.deepcopy(net.module_.state_dict()))


def fit_single_run(net, X, y, seed: int, lr_factor, collect_epochs) -> tuple:
    """One run of ``net`` with the learning rate ``lr * lr_factor(step)`` (per batch); saved states."""
    net = copy.deepcopy(net)
    collector = CollectWeights(collect_epochs)
    scheduler = LRScheduler(policy=torch.optim.lr_scheduler.LambdaLR, lr_lambda=lr_factor, step_every="batch")
    net.set_params(callbacks=[("schedule", scheduler), ("collect", collector)])
    torch.manual_seed(seed)  # this benchmark's own baselines: initialisation and shuffling
    start = time.perf_counter()
    net.fit(X, y)
    return net, collector.states_, time.perf_counter() - start


def fit_snapshot(net, X, y, seed: int, total_epochs: int, cycles: int):
    cycle = total_epochs // cycles
    steps = math.ceil(len(X) / net.batch_size) * cycle

    def factor(step):
        return 0.5 * (1.0 + math.cos(math.pi * (step % steps) / steps))

    net = copy.deepcopy(net).set_params(max_epochs=cycle * cycles)
    return fit_single_run(net, X, y, seed, factor, [cycle * (i + 1) for i in range(cycles)])


def fit_fge(net, X, y, seed: int, total_epochs: int, cycle_epochs: int, low: float):
    base_epochs = net.max_epochs
    per_epoch = math.ceil(len(X) / net.batch_size)
    base_steps, steps = base_epochs * per_epoch, cycle_epochs * per_epoch

    def factor(step):
        if step < base_steps:
            return 1.0
        t = ((step - base_steps) % steps) / steps
        return 1.0 - (1.0 - low) * 2 * t if t < 0.5 else low + (1.0 - low) * (2 * t - 1)

    collect = list(range(base_epochs + cycle_epochs // 2, total_epochs + 1, cycle_epochs))
    net = copy.deepcopy(net).set_params(max_epochs=total_epochs)
    return fit_single_run(net, X, y, seed, factor, collect)


def states_proba(net, states, sets: dict) -> dict:
    """{set: (n_networks, n, C)} of a module evaluated at each saved state."""
    out = {key: [] for key in sets}
    for state in states:
        net.module_.load_state_dict(state)
        for key, X in sets.items():
            out[key].append(net.predict_proba(X).astype(np.float64))
    return {key: np.stack(value) for key, value in out.items()}


def estimator_proba(model, sets: dict) -> dict:
    return {key: model.predict_proba_networks(X) for key, X in sets.items()}


# ------------------------------------------------------------------ evaluation


def evaluate(proba: dict, y_val, y_test) -> dict:
    """Scores of the mean over networks on every set, raw and temperature-scaled (fitted on val)."""
    mean = {key: p.mean(0) for key, p in proba.items()}
    t = temperature(np.log(np.clip(mean["val"], 1e-12, None)), y_val)
    row = {"temperature": t, "n_networks": int(len(proba["test"]))}
    for key, p in mean.items():
        if key == "val":
            continue
        for prefix, q in (("", p), ("ts_", scaled(p, t))):
            for metric, value in scores(y_test, q).items():
                if key == "test" or metric != "brier":
                    row[f"{prefix}{key}_{metric}"] = value
    return row


def espro_extras(model, networks, X_test, y_test, labels) -> dict:
    """Mean test NLL of the sampled networks (``networks``: their test probabilities) and of the
    members; vertices kept."""
    sampled = np.mean([negative_log_likelihood(y_test, p, labels=labels) for p in networks])
    members = np.mean(
        [
            negative_log_likelihood(y_test, net.predict_proba(X_test), labels=labels)
            for net in model.estimators_
        ]
    )
    kept = model.n_vertices_  # zeros for a deep ensemble, whose networks are its members
    return {
        "sampled_networks_nll": float(sampled),
        "members_nll": float(members),
        "sampled_over_members": float(sampled / members),
        "vertices_kept": np.asarray(kept).tolist(),
    }


def epochs_of(model) -> dict:
    member = int(sum(len(net.history) for net in model.estimators_))
    vertex = int(sum(len(h) for hs in getattr(model, "vertex_histories_", []) for h in hs))
    return {"member_epochs": member, "vertex_epochs": vertex, "epochs": member + vertex}


def has_early_stopping() -> bool:
    return "early_stopping" in ESPROClassifier().get_params() and (
        "early_stopping" in DeepEnsembleClassifier().get_params()
    )


def run_seed(name: str, spec: dict, config: dict, seed: int, quick: dict | None) -> list[dict]:
    X_train, X_val, X_test, y_train, y_val, y_test = load(spec, seed, config["split"])
    sets = evaluation_sets(spec, config["shift"], X_train, X_val, X_test, seed)
    X_fit = model_input(spec, X_train)
    labels = np.unique(y_train)
    net = template(spec, X_fit.shape[1:], len(labels), quick and quick["epochs"])
    espro_params = dict(quick["espro"]) if quick else {}
    de_members = DeepEnsembleClassifier().n_members
    K = config["de_max_members"]
    if not np.array_equal(draw_seeds(seed, K)[:de_members], draw_seeds(seed, de_members)):
        raise RuntimeError("DE default is no longer a prefix of DE-K; fit it separately")
    base = {"dataset": name, "seed": seed}
    rows = []
    # warm-up outside the timings: the first fit in a process pays torch's one-time set-up
    DeepEnsembleClassifier(copy.deepcopy(net).set_params(max_epochs=1), n_members=1).fit(
        X_fit[:64], y_train[:64]
    )
    started = time.perf_counter()

    de = DeepEnsembleClassifier(net, n_members=K, random_state=seed).fit(X_fit, y_train)
    de_proba = estimator_proba(de, sets)
    overhead = de.fit_time_ - de.member_fit_times_.sum()
    for k in range(1, K + 1):
        cost = float(de.member_fit_times_[:k].sum() + overhead)
        epochs = int(sum(len(m.history) for m in de.estimators_[:k]))
        scored = evaluate({key: p[:k] for key, p in de_proba.items()}, y_val, y_test)
        rows.append({**base, "method": f"DE-{k}", "members": k, "cost_s": cost, "epochs": epochs, **scored})
        if k == de_members:
            rows.append({**rows[-1], "method": "DE default"})

    for label, decay in (("ESPRO default", {}), ("ESPRO auto", {"vertex_weight_decay": "auto"})):
        espro = ESPROClassifier(net, random_state=seed, **decay, **espro_params).fit(X_fit, y_train)
        holdout = espro.vertex_weight_decay == "holdout"
        rows.append(
            {
                **base,
                "method": label,
                "members": espro.n_members,
                "cost_s": float(espro.fit_time_),  # a holdout probe's training included
                **({"holdout_choice": str(espro.vertex_weight_decay_)} if holdout else {}),
                **epochs_of(espro),
                **evaluate(espro_proba := estimator_proba(espro, sets), y_val, y_test),
                **espro_extras(espro, espro_proba["test"], sets["test"], y_test, labels),
            }
        )
    if has_early_stopping():
        for label, cls, params in (
            ("DE early stopping", DeepEnsembleClassifier, {}),
            ("ESPRO early stopping", ESPROClassifier, espro_params),
        ):
            model = cls(net, early_stopping=True, random_state=seed, **params).fit(X_fit, y_train)
            row = {**base, "method": label, "members": model.n_members, "cost_s": float(model.fit_time_)}
            proba = estimator_proba(model, sets)
            row.update(epochs_of(model), **evaluate(proba, y_val, y_test))
            if cls is ESPROClassifier:
                row.update(espro_extras(model, proba["test"], sets["test"], y_test, labels))
            rows.append(row)

    total_epochs = de_members * net.max_epochs  # the default deep ensemble's epochs
    for label, (fitted, states, took) in (
        ("snapshot", fit_snapshot(net, X_fit, y_train, seed, total_epochs, config["snapshot"]["cycles"])),
        (
            "FGE",
            fit_fge(
                net,
                X_fit,
                y_train,
                seed,
                total_epochs,
                config["fge"]["cycle_epochs"],
                config["fge"]["low_lr_fraction"],
            ),
        ),
    ):
        scored = evaluate(states_proba(fitted, states, sets), y_val, y_test)
        rows.append(
            {**base, "method": label, "members": 1, "cost_s": took, "epochs": len(fitted.history), **scored}
        )
    print(f"{name} seed {seed}: {time.perf_counter() - started:.1f} s", flush=True)
    return rows


# ------------------------------------------------------------------ main


def run_suite(config: dict, run_one, threads: int | None = None) -> tuple[list[dict], dict]:
    """Rows of ``run_one(data set, spec, seed)`` over the data sets and seeds; the environment."""
    torch.set_num_threads(threads or config["torch_threads"])
    started = time.perf_counter()
    rows = []
    for dataset, spec in config["datasets"].items():
        for seed in config["seeds"]:
            rows += run_one(dataset, spec, seed)
    env = environment("cpu")
    env["wall_s"] = round(time.perf_counter() - started, 1)
    return rows, env


def quick_config(config: dict, datasets: bool) -> tuple[dict, dict]:
    """A smoke run: one seed, 2-epoch members, one corruption; digits MLP unless ``--datasets`` is given."""
    config = copy.deepcopy(config)
    config.update(seeds=[0], de_max_members=DeepEnsembleClassifier().n_members)
    config["shift"].update(corruptions=config["shift"]["corruptions"][:1], severities=[1])
    if not datasets:
        config["datasets"] = {"digits_mlp": config["datasets"]["digits_mlp"]}
    return config, {"epochs": 2, "espro": {"vertex_epochs": 1, "n_samples": 2}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (not kept in git)")
    parser.add_argument("--datasets", default=None, help="comma-separated names from the config")
    parser.add_argument("--seeds", type=int, default=None, help="run only the first N seeds of the config")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the config's)")
    parser.add_argument("--render", action="store_true", help="rebuild the Markdown from the stored JSON")
    parser.add_argument("--results-dir", default=None, help="where to write (default benchmarks/results)")
    args = parser.parse_args(argv)
    config = json.loads(CONFIG.read_text())
    quick = None
    if args.quick:
        config, quick = quick_config(config, bool(args.datasets))
    if args.datasets:
        unknown = sorted(set(args.datasets.split(",")) - set(config["datasets"]))
        if unknown:
            parser.error(f"unknown data sets {unknown}; choose from {sorted(config['datasets'])}")
        config["datasets"] = {d: config["datasets"][d] for d in args.datasets.split(",")}
    if args.seeds is not None:
        config["seeds"] = config["seeds"][: args.seeds]
    name = "defaults" + ("-quick" if args.quick else "")
    directory = Path(args.results_dir) if args.results_dir else RESULTS
    if args.render:
        stored = json.loads((directory / f"{name}.json").read_text())
        config, rows, env = stored["config"], stored["rows"], stored["environment"]
    else:
        rows, env = run_suite(
            config, lambda name, spec, seed: run_seed(name, spec, config, seed, quick), args.threads
        )
        env["early_stopping_available"] = has_early_stopping()
    markdown = report(config, rows, env)
    paths = write_results(name, {"environment": env, "config": config, "rows": rows}, markdown, directory)
    print(markdown)
    print("written:", *paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
