"""Shared helpers of the benchmark scripts: environment record, timing, output."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shlex
import sys
from pathlib import Path

import torch

from skspro._bench import median_time, synchronize  # noqa: F401  (re-exported for the scripts)

RESULTS = Path(__file__).resolve().parent / "results"


def environment(device: str) -> dict:
    """What a result was measured on: command, versions, device, date."""
    import numpy
    import sklearn
    import skorch

    import skspro

    info = {
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "skorch": skorch.__version__,
        "skspro": skspro.__version__,
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    info["commit"] = _commit()
    return info


def _commit() -> str:
    """The repository's commit (with "+changes" when the tree differs from it), or "unknown"."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def classifier_net(
    module, *, lr: float, max_epochs: int, batch_size: int = 64, device: str = "cpu", **module_params
):
    """The skorch template the benchmarks train: 10 classes, cross-entropy, Adam, shuffled batches."""
    from skorch import NeuralNetClassifier

    return NeuralNetClassifier(
        module,
        module__n_classes=10,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=lr,
        batch_size=batch_size,
        max_epochs=max_epochs,
        train_split=None,
        iterator_train__shuffle=True,
        device=device,
        verbose=0,
        **{f"module__{k}": v for k, v in module_params.items()},
    )


def write_results(
    name: str, payload: dict, markdown: str, directory: Path | None = None
) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` under benchmarks/results/ (or ``directory``)."""
    directory = RESULTS if directory is None else Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{name}.json"
    md_path = directory / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(value):
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
