"""The documentation builds without warnings, with every gallery example executed.

This is the docs step of ``.ci/run`` (it runs the README's test command):
``sphinx-build -W`` on ``docs/`` in a fresh output folder, offline
(``SKSPRO_DOCS_OFFLINE=1``: no intersphinx inventories are fetched, whose
unreachability is the only warning an offline build would give). It takes
about a minute alone on a 2-core CPU, 1.5 minutes beside the other worker
of ``-n 2`` (it runs first, see ``conftest.py``); set ``SKSPRO_SKIP_DOCS=1`` to skip it
locally. It needs the ``docs`` extra (``pip install -e ".[test,dask,docs]"``).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("plot_*.py"))


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SKSPRO_SKIP_DOCS") == "1", reason="SKSPRO_SKIP_DOCS=1")
def test_docs_build_without_warnings_and_run_the_gallery(tmp_path):
    pytest.importorskip("sphinx_gallery", reason="needs the docs extra: pip install -e '.[docs]'")
    assert len(EXAMPLES) >= 6
    env = {
        **os.environ,
        "SKSPRO_DOCS_OFFLINE": "1",
        "SKSPRO_DOCS_RUN_ALL": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
    }
    out, doctrees, warnings = tmp_path / "html", tmp_path / "doctrees", tmp_path / "warnings.txt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-W",
            "--keep-going",
            "-q",
            "-d",
            str(doctrees),
            "-w",
            str(warnings),
            "docs",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"{warnings.read_text() if warnings.exists() else ''}\n{result.stderr[-4000:]}"
    )
    assert warnings.read_text().strip() == ""
    for name in EXAMPLES:  # every example ran and left its figures in the built pages
        page = out / "auto_examples" / name.replace(".py", ".html")
        assert page.exists(), name
        stem = name.removesuffix(".py")
        if stem != "plot_grid_search_dask":
            assert list((out / "_images").glob(f"sphx_glr_{stem}_*.png")), f"no figure from {name}"
    assert (out / "index.html").read_text().count("loss_surface.png") >= 1
