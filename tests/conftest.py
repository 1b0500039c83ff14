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
    """The docs build first (a third of the suite's time, one test): run with
    ``-n 2`` (pytest-xdist, as the README's command does), the other worker
    runs the rest meanwhile instead of waiting for it at the end."""
    items.sort(key=lambda item: item.path.name != "test_docs.py")
