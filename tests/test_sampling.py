"""Uniform sampling on the simplex."""

import numpy as np
import pytest
import torch
from scipy import stats

from skspro.simplex import make_generator, sample_simplex_weights


@pytest.mark.parametrize("n_vertices", [2, 3, 6])
def test_dirichlet_mean_and_beta_marginals(n_vertices):
    weights = sample_simplex_weights(n_vertices, 20_000, make_generator(n_vertices), dtype=torch.float64)
    assert torch.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(1).numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(weights.mean(0).numpy(), 1 / n_vertices, atol=0.01)
    # Each coordinate of Dirichlet(1, ..., 1) is Beta(1, K - 1); Bonferroni
    # over the coordinates keeps the false-alarm rate at 1e-3 per case.
    for j in range(n_vertices):
        p_value = stats.kstest(weights[:, j].numpy(), stats.beta(1, n_vertices - 1).cdf).pvalue
        assert p_value > 1e-3 / n_vertices


def test_same_seed_same_points_and_global_state_untouched():
    before = torch.random.get_rng_state()
    a = sample_simplex_weights(4, 7, make_generator(123))
    b = sample_simplex_weights(4, 7, make_generator(123))
    c = sample_simplex_weights(4, 7, make_generator(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(before, torch.random.get_rng_state())


def test_one_vertex_is_the_vertex_itself():
    assert torch.equal(sample_simplex_weights(1, 3, make_generator(0)), torch.ones((3, 1)))


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="n_vertices must be >= 1"):
        sample_simplex_weights(0, 3)
