"""deep_ensemble_equivalent against a naive dense-grid reference."""

import numpy as np
import pytest

from skspro.metrics import deep_ensemble_equivalent


def reference_dee(nll, sizes, nlls, grid_points=200_001):
    """Smallest size on a fine grid whose linearly interpolated NLL is <= nll (numpy only)."""
    grid = np.linspace(sizes[0], sizes[-1], grid_points)
    curve = np.interp(grid, sizes, nlls)
    reached = np.flatnonzero(curve <= nll + 1e-12)
    return (grid[reached[0]], False) if reached.size else (float(sizes[-1]), True)


@pytest.mark.parametrize("seed", range(5))
def test_matches_dense_grid_reference(seed):
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, 9, dtype=float)
    # a noisy, not always monotone deep-ensemble curve
    nlls = 0.3 + 0.3 / sizes + rng.normal(0, 0.01, size=sizes.size)
    queries = rng.uniform(nlls.min() - 0.05, nlls.max() + 0.05, size=50)
    dee, censored = deep_ensemble_equivalent(queries, sizes, nlls, return_censored=True)
    expected = [reference_dee(q, sizes, nlls) for q in queries]
    np.testing.assert_allclose(dee, [e[0] for e in expected], atol=(sizes[-1] - sizes[0]) / 200_000 * 2)
    np.testing.assert_array_equal(censored, [e[1] for e in expected])


def test_monotone_in_nll_and_exact_at_the_measured_sizes():
    sizes, nlls = [1, 2, 4, 8], [0.9, 0.7, 0.72, 0.6]  # 4 members worse than 2 (noise)
    grid = np.linspace(0.5, 1.0, 301)
    dee = deep_ensemble_equivalent(grid, sizes, nlls)
    assert np.all(np.diff(dee) <= 1e-12)  # lower NLL, never a smaller DEE
    assert deep_ensemble_equivalent(0.7, sizes, nlls) == 2.0
    # 0.71 is reached first between 1 and 2 members, not between 4 and 8
    assert deep_ensemble_equivalent(0.71, sizes, nlls) == pytest.approx(1.95)
    assert deep_ensemble_equivalent(0.6, sizes, nlls) == 8.0


def test_ends_clip_below_and_censor_above():
    sizes, nlls = [1, 2, 3], [0.5, 0.4, 0.35]
    assert deep_ensemble_equivalent(0.9, sizes, nlls, return_censored=True) == (1.0, False)
    assert deep_ensemble_equivalent(0.1, sizes, nlls, return_censored=True) == (3.0, True)
    assert deep_ensemble_equivalent(0.35, sizes, nlls, return_censored=True) == (3.0, False)
    assert isinstance(deep_ensemble_equivalent(0.45, sizes, nlls), float)


@pytest.mark.parametrize(
    ("sizes", "nlls", "match"),
    [
        ([1, 2], [0.5], "same non-zero length"),
        ([], [], "same non-zero length"),
        ([2, 1], [0.5, 0.4], "strictly increasing"),
        ([0, 1], [0.5, 0.4], "positive"),
        ([1, 2], [0.5, np.nan], "finite"),
    ],
)
def test_bad_curves(sizes, nlls, match):
    with pytest.raises(ValueError, match=match):
        deep_ensemble_equivalent(0.4, sizes, nlls)


def test_bad_nll():
    with pytest.raises(ValueError, match="nll must be finite"):
        deep_ensemble_equivalent(np.inf, [1, 2], [0.5, 0.4])
