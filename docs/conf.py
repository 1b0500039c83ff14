"""Sphinx configuration of the skspro documentation.

Build (the gallery runs every example under ``examples/``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Offline, set ``SKSPRO_DOCS_OFFLINE=1``: intersphinx inventories are then not
fetched (their warning is the only one an offline build would give).
"""

import os

import skspro

project = "skspro"
author = "the skspro developers"
copyright = "the skspro developers"
release = skspro.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
exclude_patterns = ["_build"]

html_theme = "pydata_sphinx_theme"
html_title = f"skspro {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable", None),
    "torch": ("https://pytorch.org/docs/stable", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
}
if os.environ.get("SKSPRO_DOCS_OFFLINE"):
    intersphinx_mapping = {}
intersphinx_timeout = 5

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "show_memory": False,
    "reset_modules": ("matplotlib", "seaborn"),
    "remove_config_comments": True,
    "min_reported_time": 1,
    # The docs test (tests/test_docs.py) reruns every example even when an
    # earlier build in this tree left its outputs.
    "run_stale_examples": bool(os.environ.get("SKSPRO_DOCS_RUN_ALL")),
}

# sklearn's inherited docstrings (``score``, ``set_*_request``) link to its own
# docs' labels and glossary terms.
suppress_warnings = ["ref.ref", "ref.term"]
