"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One intra-op thread for the whole suite.

    The networks here are tiny and gain nothing from more threads; with
    another process busy on the same cores, torch's spinning threads make
    them many times slower (measured 30-100x on 2 cores). One thread also
    makes timings and floating-point results independent of the machine's
    core count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_collection_modifyitems(items):
    """A safeguard for ``-n 2`` (pytest-xdist, as the README's command runs):
    the docs build (one test, a third of the suite's time) is collected first,
    so that it never starts last while the other worker idles. Today's order
    already puts it in the first batch; this keeps it there if files are added."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/test_docs.py::"))
