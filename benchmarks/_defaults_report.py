"""Tables and the issue-11 target checks of benchmarks/defaults.py, computed from its rows."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from _common import markdown_table

from skspro.metrics import deep_ensemble_equivalent

PAIRS = [
    ("ESPRO default", "DE default"),
    ("ESPRO early stopping", "DE early stopping"),
    ("ESPRO auto", "DE default"),
]
#: How the target lines name each pair's ESPRO.
TAGS = {
    "ESPRO default": "",
    "ESPRO early stopping": " (early stopping)",
    "ESPRO auto": ' (vertex_weight_decay="auto", the earlier default)',
}
BASELINES = ["snapshot", "FGE"]
HEADLINE_METHODS = [
    "DE default",
    "ESPRO default",
    "snapshot",
    "FGE",
    "DE early stopping",
    "ESPRO early stopping",
    "ESPRO auto",
]
REFERENCE = {
    "ESPRO default": "DE default",
    "snapshot": "DE default",
    "FGE": "DE default",
    "DE early stopping": "DE default",
    "ESPRO early stopping": "DE early stopping",
    "ESPRO auto": "DE default",
}
SAMPLED_TOLERANCE = 1.02  # sampled networks' mean NLL at most 2 % above the members'


def needed(n: int, share: float) -> int:
    """Seeds out of ``n`` a rule asks for (2 and 3 of 5)."""
    return math.ceil(share * n - 1e-9)


def paired(df: pd.DataFrame, dataset: str, method: str, reference: str, column: str) -> dict | None:
    """Paired comparison over seeds of ``column`` (lower is better)."""
    pick = lambda m: df[(df.dataset == dataset) & (df.method == m)].set_index("seed")[column]  # noqa: E731
    a, b = pick(method), pick(reference)
    both = a.index.intersection(b.index)
    if not len(both) or a[both].isna().any() or b[both].isna().any():
        return None
    a, b = a[both].astype(float), b[both].astype(float)
    d = a - b
    ref = b.mean()
    pct = 100.0 * d.mean() / ref if ref else (0.0 if d.mean() == 0 else math.inf * np.sign(d.mean()))
    return {
        "mean": a.mean(),
        "ref": ref,
        "diff_pct": pct,
        "not_worse": int((d <= 0).sum()),
        "better": int((d < 0).sum()),
        "n": len(d),
    }


def not_worse(p: dict) -> bool:
    """The issue's seed-noise rule: mean paired difference <= +1 % and not worse on >= 2 of 5 seeds."""
    return p["diff_pct"] <= 1.0 and p["not_worse"] >= needed(p["n"], 0.4)


def strictly_better(p: dict) -> bool:
    return p["diff_pct"] < 0 and p["better"] >= needed(p["n"], 0.6)


def dee_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, seed and method: DEE on the temperature-scaled DE-k curve, and members its cost buys."""
    out = []
    for (dataset, seed), group in df.groupby(["dataset", "seed"]):
        curve = group[group.method.str.fullmatch(r"DE-\d+")].sort_values("members")
        sizes, nlls = curve.members.to_numpy(float), curve.ts_test_nll.to_numpy(float)
        member_cost = curve.cost_s.iloc[-1] / sizes[-1]
        for _, row in group[~group.method.str.fullmatch(r"DE-\d+")].iterrows():
            dee, censored = deep_ensemble_equivalent(row.ts_test_nll, sizes, nlls, return_censored=True)
            out.append(
                {
                    "dataset": dataset,
                    "seed": seed,
                    "method": row.method,
                    "dee": dee,
                    "censored": censored,
                    "members_bought": row.cost_s / member_cost,
                    "max_size": sizes[-1],
                }
            )
    return pd.DataFrame(out)


def _dee_text(frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    value = f"{frame.dee.mean():.2f}"
    return (">=" + value) if frame.censored.any() else value


def headline(df: pd.DataFrame, dees: pd.DataFrame) -> list[dict]:
    records = []
    for dataset in dict.fromkeys(df.dataset):
        for method in HEADLINE_METHODS:
            own = df[(df.dataset == dataset) & (df.method == method)]
            if own.empty:
                continue
            dee = dees[(dees.dataset == dataset) & (dees.method == method)]
            record = {
                "dataset": dataset,
                "method": method,
                "cost s": own.cost_s.mean(),
                "epochs": own.epochs.mean(),
                "error": own.test_error.mean(),
                "NLL": own.test_nll.mean(),
                "TS NLL": own.ts_test_nll.mean(),
                "DEE (TS)": _dee_text(dee),
                "DE members its cost buys": dee.members_bought.mean(),
            }
            reference = REFERENCE.get(method)
            for prefix, column in (("", "test_nll"), ("TS ", "ts_test_nll")):
                p = reference and paired(df, dataset, method, reference, column)
                if p:
                    record["vs"] = reference
                    record[f"{prefix}dNLL %"] = f"{p['diff_pct']:+.1f}"
                    record[f"{prefix}wins"] = f"{p['better']}/{p['n']}"
            if "sampled_over_members" in own:
                ratio = own.sampled_over_members.mean()
                record["sampled / members NLL"] = "" if np.isnan(ratio) else round(ratio, 4)
            records.append(record)
    return records


def _pair_text(chosen: list[dict], own: str, side: str, column: str) -> str:
    return f"{np.mean([s[own] for s in chosen]):.4g} / {np.mean([s[side][column] for s in chosen]):.4g}"


def at_cost(df: pd.DataFrame) -> list[dict]:
    """ESPRO against the DE-k whose measured cost is just below and just above its own."""
    records = []
    for method in TAGS:
        for dataset in dict.fromkeys(df.dataset):
            per_seed = []
            for _, group in df[df.dataset == dataset].groupby("seed"):
                own = group[group.method == method]
                if own.empty:
                    continue
                own = own.iloc[0]
                curve = group[group.method.str.fullmatch(r"DE-\d+")].sort_values("cost_s")
                below, above = curve[curve.cost_s <= own.cost_s], curve[curve.cost_s >= own.cost_s]
                per_seed.append(
                    {
                        "nll": own.test_nll,
                        "ts": own.ts_test_nll,
                        "below": below.iloc[-1] if len(below) else None,
                        "above": above.iloc[0] if len(above) else None,
                    }
                )
            if not per_seed:
                continue
            record = {"dataset": dataset, "method": method, "seeds": len(per_seed)}
            for side in ("below", "above"):
                chosen = [s for s in per_seed if s[side] is not None]
                if not chosen:
                    record[f"DE-k {side}"] = "none"
                    continue
                ks = sorted({int(s[side].members) for s in chosen})
                record[f"DE-k {side}"] = "/".join(map(str, ks))
                record[f"NLL vs {side}"] = _pair_text(chosen, "nll", side, "test_nll")
                record[f"wins {side}"] = f"{sum(s['nll'] < s[side].test_nll for s in chosen)}/{len(chosen)}"
                record[f"TS NLL vs {side}"] = _pair_text(chosen, "ts", side, "ts_test_nll")
                record[f"TS wins {side}"] = (
                    f"{sum(s['ts'] < s[side].ts_test_nll for s in chosen)}/{len(chosen)}"
                )
            records.append(record)
    return records


def against_baselines(df: pd.DataFrame) -> tuple[list[dict], dict]:
    """ESPRO default vs snapshot and FGE: paired differences; which data sets ESPRO wins after TS."""
    records, beats = [], {b: ([], []) for b in BASELINES}
    for dataset in dict.fromkeys(df.dataset):
        for baseline in BASELINES:
            raw = paired(df, dataset, "ESPRO default", baseline, "test_nll")
            ts = paired(df, dataset, "ESPRO default", baseline, "ts_test_nll")
            if raw is None or ts is None:
                continue
            records.append(
                {
                    "dataset": dataset,
                    "ESPRO vs": baseline,
                    "NLL": f"{raw['mean']:.4g} / {raw['ref']:.4g}",
                    "dNLL %": f"{raw['diff_pct']:+.1f}",
                    "wins": f"{raw['better']}/{raw['n']}",
                    "TS NLL": f"{ts['mean']:.4g} / {ts['ref']:.4g}",
                    "TS dNLL %": f"{ts['diff_pct']:+.1f}",
                    "TS wins": f"{ts['better']}/{ts['n']}",
                }
            )
            beats[baseline][0 if strictly_better(ts) else 1].append(dataset)
    return records, beats


def shift_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Long per-seed frame of shifted scores; corruptions averaged per severity."""
    keys = sorted({c.rsplit("_", 1)[0] for c in df.columns if "/" in c and not c.startswith("ts_")})
    records = []
    for _, row in df.iterrows():
        for key in keys:
            kind, severity = key.split("/")
            shift = "noise" if kind == "noise" else "corruptions (mean)"
            for prefix in ("", "ts_"):
                for metric in ("nll", "ece", "error"):
                    value = row.get(f"{prefix}{key}_{metric}")
                    if value is None or pd.isna(value):
                        continue
                    records.append(
                        {
                            "dataset": row.dataset,
                            "seed": row.seed,
                            "method": row.method,
                            "shift": shift,
                            "severity": severity,
                            "scaling": "TS" if prefix else "raw",
                            "metric": metric,
                            "value": float(value),
                        }
                    )
    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    group = ["dataset", "seed", "method", "shift", "severity", "scaling", "metric"]
    return frame.groupby(group, as_index=False).value.mean()


def shift_checks(df: pd.DataFrame, image_tasks: set) -> tuple[list[dict], dict]:
    frame = shift_frame(df)
    records, failures = [], {pair: [] for pair in PAIRS}
    if frame.empty:
        return records, failures
    for pair in PAIRS:
        for (dataset, shift, severity, metric), cell in frame.groupby(
            ["dataset", "shift", "severity", "metric"]
        ):
            record = {
                "dataset": dataset,
                "ESPRO vs": pair[1],
                "shift": shift,
                "severity": severity,
                "metric": metric,
            }
            for scaling in ("raw", "TS"):
                part = cell[cell.scaling == scaling].rename(columns={"value": "v"})
                p = paired(part, dataset, pair[0], pair[1], "v")
                if p is None:
                    break
                ok = not_worse(p)
                record[f"{scaling}: ESPRO / DE"] = f"{p['mean']:.4g} / {p['ref']:.4g}"
                record[f"{scaling} d%"] = f"{p['diff_pct']:+.1f}"
                record[f"{scaling} not worse"] = f"{p['not_worse']}/{p['n']}"
                record[f"{scaling} ok"] = "yes" if ok else "NO"
                if not ok and dataset in image_tasks:
                    failures[pair].append(f"{dataset} {shift} {severity} {metric} {scaling}")
            else:
                records.append(record)
    return records, failures


def simplex_under_shift(df: pd.DataFrame, image_tasks: set) -> list[dict]:
    """ESPRO under shift next to the deep ensemble of its own members (DE-k,
    k its members: the same networks without their simplexes) and of one
    member more: what the simplexes add, against what one more independent
    member adds (means over seeds; corruptions averaged per severity)."""
    frame = shift_frame(df[df.dataset.isin(image_tasks)])
    records = []
    if frame.empty:
        return records
    for dataset, part in frame.groupby("dataset"):
        k = int(df[(df.dataset == dataset) & (df.method == "ESPRO default")].members.iloc[0])
        own, more = f"DE-{k}", f"DE-{k + 1}"
        means = part.groupby(["shift", "severity", "scaling", "metric", "method"]).value.mean()
        for (shift, severity, scaling, metric), cell in means.groupby(level=[0, 1, 2, 3]):
            cell = cell.droplevel([0, 1, 2, 3])
            if not {own, more, "ESPRO default"} <= set(cell.index):
                continue
            base = cell[own]
            records.append(
                {
                    "dataset": dataset,
                    "shift": shift,
                    "severity": severity,
                    "scaling": scaling,
                    "metric": metric,
                    f"{own} (ESPRO's members)": f"{base:.4g}",
                    "ESPRO": f"{cell['ESPRO default']:.4g}",
                    more: f"{cell[more]:.4g}",
                    "simplexes d%": f"{100 * (cell['ESPRO default'] - base) / base:+.1f}",
                    "one more member d%": f"{100 * (cell[more] - base) / base:+.1f}",
                }
            )
    return records


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def targets(config: dict, df: pd.DataFrame, dees: pd.DataFrame) -> list[str]:
    datasets = list(dict.fromkeys(df.dataset))
    lines = []
    for method, reference in PAIRS:
        if df[df.method == method].empty:
            lines.append(f"- {method} vs {reference}: not run.")
            continue
        tag = TAGS[method]
        fails, strict = [], []
        for dataset in datasets:
            for scaling, column in (("raw", "test_nll"), ("TS", "ts_test_nll")):
                p = paired(df, dataset, method, reference, column)
                if p is None or not not_worse(p):
                    fails.append(
                        f"{dataset} {scaling}"
                        + (f" ({p['diff_pct']:+.1f} %, {p['not_worse']}/{p['n']})" if p else "")
                    )
            p = paired(df, dataset, method, reference, "ts_test_nll")
            if p is not None and strictly_better(p):
                strict.append(dataset)
        ok = not fails and len(strict) >= 3
        lines.append(
            f"- {verdict(ok)} T1{tag}: `{method}` vs `{reference}`, test NLL not worse beyond seed noise "
            "on every data set, raw and TS; strictly better after TS on >= 3. Worse on: "
            f"{', '.join(fails) or 'none'}; strictly better after TS on {len(strict)} "
            f"({', '.join(strict) or 'none'})."
        )
        ratios = df[df.method == method].groupby("dataset").sampled_over_members.mean()
        over = [f"{d} ({r:.3f})" for d, r in ratios.items() if not r <= SAMPLED_TOLERANCE]
        lines.append(
            f"- {verdict(not over and len(ratios) == len(datasets))} T2{tag}: sampled networks' mean "
            f"test NLL <= {SAMPLED_TOLERANCE} x the members' on every data set (worst {ratios.max():.3f}). "
            f"Above: {', '.join(over) or 'none'}."
        )
        mine = dees[dees.method == method].groupby("dataset")[["dee", "members_bought"]].mean()
        above = [d for d, r in mine.iterrows() if r.dee > r.members_bought]
        ok = len(above) >= math.ceil(len(datasets) / 2)
        lines.append(
            f"- {verdict(ok)} T4{tag}: DEE (TS) above the DE members its measured cost buys on >= half "
            f"the data sets: {len(above)} of {len(datasets)} ({', '.join(above) or 'none'})."
        )
    image_tasks = {d for d in datasets if "image_shape" in config["datasets"].get(d, {})}
    no_bn_cnn = [
        d
        for d in image_tasks
        if config["datasets"][d].get("model") == "cnn" and not config["datasets"][d].get("batch_norm")
    ]
    _, failures = shift_checks(df, image_tasks)
    for method, reference in PAIRS:
        if df[df.method == method].empty:
            continue
        tag = TAGS[method]
        if not no_bn_cnn:
            lines.append(f"- **NOT EVALUATED** T3{tag}: no image CNN without BatchNorm in this run.")
            continue
        fails = failures[(method, reference)]
        lines.append(
            f"- {verdict(not fails)} T3{tag}: under shift on the image tasks "
            f"({', '.join(sorted(image_tasks))}), `{method}` not worse than `{reference}` beyond seed noise "
            "in NLL, ECE and error at every severity, raw and TS. "
            f"Failing cells ({len(fails)}): {'; '.join(fails) or 'none'}."
        )
    _, beats = against_baselines(df)
    present = all(not df[(df.dataset == d) & (df.method == b)].empty for d in datasets for b in BASELINES)
    equal = all(
        np.allclose(
            df[(df.dataset == d) & (df.method == b)].epochs,
            df[(df.dataset == d) & (df.method == "DE default")].epochs,
        )
        for d in datasets
        for b in BASELINES
        if present
    )
    text = "; ".join(
        f"ESPRO strictly better than {b} after TS on {', '.join(beats[b][0]) or 'none'}, "
        f"not on {', '.join(beats[b][1]) or 'none'}"
        for b in BASELINES
    )
    lines.sort(key=lambda line: re.search(r" T(\d)", line).group(1) if re.search(r" T(\d)", line) else "9")
    lines.append(
        f"- {verdict(present and equal)} T5: snapshot and FGE reported at the default deep ensemble's "
        f"epochs. {text}."
    )
    return lines


def holdout_choices(df: pd.DataFrame) -> list[dict]:
    """Per data set, the seeds on which ``ESPRO default`` (``vertex_weight_decay="holdout"``)
    chose each decay."""
    if "holdout_choice" not in df:
        return []
    own = df[(df.method == "ESPRO default") & df.holdout_choice.notna()]
    return [
        {"dataset": dataset, **{f"chose {c}": int(n) for c, n in group.holdout_choice.value_counts().items()}}
        for dataset, group in own.groupby("dataset", sort=False)
    ]


def report(config: dict, rows: list[dict], env: dict) -> str:
    df = pd.DataFrame(rows)
    dees = dee_rows(df)
    image_tasks = {d for d in df.dataset.unique() if "image_shape" in config["datasets"].get(d, {})}
    shift_records, _ = shift_checks(df, image_tasks)
    baseline_records, _ = against_baselines(df)

    def fmt(records: list[dict]) -> str:
        if not records:
            return "(none)\n"
        return markdown_table(records, list(dict.fromkeys(k for r in records for k in r)))

    means = (
        df.groupby(["dataset", "method"], sort=False)[
            [
                "cost_s",
                "epochs",
                "n_networks",
                "test_error",
                "test_nll",
                "test_ece",
                "test_brier",
                "ts_test_nll",
                "ts_test_ece",
                "ts_test_brier",
                "temperature",
            ]
        ]
        .mean()
        .reset_index()
    )
    return (
        "# Defaults: ESPROClassifier() vs DeepEnsembleClassifier() (issue 11)\n\n"
        + "\n".join(f"- {k}: {v}" for k, v in env.items())
        + f"\n- seeds: {sorted(df.seed.unique().tolist())}; data sets: {', '.join(df.dataset.unique())}; "
        "settings: benchmarks/configs/defaults.json\n\n"
        "## Targets\n\nComputed from the numbers below. Seed-noise rule: mean paired difference <= +1 % "
        "of the reference's mean and not worse on >= 40 % of the seeds (2 of 5); strictly better: negative "
        "mean difference and better on >= 60 % (3 of 5). TS: temperature scaling fitted on the validation "
        "split.\n\n"
        + "\n".join(targets(config, df, dees))
        + "\n\n## Headline (means over seeds)\n\n`dNLL %`: mean paired difference against `vs` in % of "
        "its mean; `wins`: seeds with a lower NLL. `DEE (TS)`: deep-ensemble equivalent on the "
        "temperature-scaled DE-k curve (`>=`: beat the largest DE-k on some seed, so a lower bound); "
        "`DE members its cost buys`: measured training seconds over one DE member's.\n\n"
        + fmt(headline(df, dees))
        + '\n## What the default `vertex_weight_decay="holdout"` chose\n\n'
        "Per data set, the seeds on which its probe "
        "chose each decay (epochs in the headline are the fitted model's, without the probe's; its cost "
        "includes them).\n\n"
        + fmt(holdout_choices(df))
        + "\n## ESPRO against the deep ensembles just below and just above its measured cost\n\n"
        + fmt(at_cost(df))
        + "\n## ESPRO default against snapshot ensembles and FGE\n\n"
        + fmt(baseline_records)
        + "\n## Under shift (ESPRO vs the equal-cost deep ensemble; corruptions averaged per severity)\n\n"
        + fmt(shift_records)
        + "\n## Under shift: what the simplexes add, against one more member\n\n`simplexes d%`: ESPRO "
        "against the deep ensemble of its own members (the same networks without their simplexes); `one "
        "more member d%`: the deep ensemble of one member more against the same; in % of the first "
        "(means over seeds, image tasks).\n\n"
        + fmt(simplex_under_shift(df, image_tasks))
        + "\n## Every method (means over seeds)\n\n"
        + fmt(means.to_dict("records"))
    )
