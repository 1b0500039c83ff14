"""Log-volume of simplexes against closed forms and independent formulas."""

import math

import numpy as np
import pytest
import torch

from skspro.simplex import IncrementalLogVolume, cayley_menger_log_volume, log_volume


def regular_simplex(k: int, edge: float = 1.0, dim: int | None = None) -> torch.Tensor:
    """k + 1 vertices of a regular k-simplex: scaled standard basis of R^(k+1)."""
    dim = dim or k + 1
    vertices = torch.zeros((k + 1, dim), dtype=torch.float64)
    vertices[:, : k + 1] = torch.eye(k + 1, dtype=torch.float64) * edge / math.sqrt(2)
    return vertices


def regular_volume(k: int, edge: float = 1.0) -> float:
    return edge**k / math.factorial(k) * math.sqrt((k + 1) / 2**k)


def test_unit_right_triangle_has_area_one_half():
    triangle = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert float(log_volume(triangle).exp()) == pytest.approx(0.5, rel=1e-12)


def test_edge_length_for_k_equal_one():
    segment = torch.tensor([[1.0, 2.0, 3.0], [4.0, 6.0, 3.0]])
    assert float(log_volume(segment).exp()) == pytest.approx(5.0, rel=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("edge", [1e-3, 1.0, 250.0])
def test_regular_simplexes_match_closed_form(k, edge):
    vertices = regular_simplex(k, edge, dim=k + 5)
    assert float(log_volume(vertices)) == pytest.approx(math.log(regular_volume(k, edge)), abs=1e-10)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_gram_and_cayley_menger_agree_on_random_simplexes(k):
    generator = torch.Generator().manual_seed(k)
    vertices = torch.randn((k + 1, 12), generator=generator, dtype=torch.float64)
    edges = vertices[1:] - vertices[:1]
    gram_log_volume = 0.5 * torch.logdet(edges @ edges.T) - math.lgamma(k + 1)
    assert float(log_volume(vertices)) == pytest.approx(float(gram_log_volume), abs=1e-10)
    assert float(log_volume(vertices)) == pytest.approx(float(cayley_menger_log_volume(vertices)), abs=1e-8)


def test_volume_is_invariant_to_vertex_order_and_translation():
    generator = torch.Generator().manual_seed(0)
    vertices = torch.randn((4, 30), generator=generator, dtype=torch.float64)
    reference = float(log_volume(vertices))
    assert float(log_volume(vertices[[2, 0, 3, 1]])) == pytest.approx(reference, abs=1e-10)
    assert float(log_volume(vertices + 17.0)) == pytest.approx(reference, abs=1e-10)


def test_millions_of_parameters_do_not_overflow():
    # Edges of length ~ 3e3 in 4e6 dimensions: det G ~ 1e21 for k=3 would be
    # fine, but for k=8 it is ~ 1e55; in float32 products overflow, logs don't.
    generator = torch.Generator().manual_seed(1)
    k, n_params = 8, 4_000_000
    vertices = torch.randn((k + 1, n_params), generator=generator) * 1.5
    value = float(log_volume(vertices))
    assert math.isfinite(value)
    # Gaussian vertices: E[G] = s^2 P (I + 11^T), det = (s^2 P)^k (k + 1), and
    # in 4e6 dimensions G is within ~1e-3 of its expectation.
    expected = 0.5 * (k * math.log(1.5**2 * n_params) + math.log(k + 1)) - math.lgamma(k + 1)
    assert value == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize(
    "vertices",
    [
        torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]),  # repeated vertex
        torch.tensor([[0.0, 0.0], [0.0, 0.0]]),  # k = 1, zero length
        torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),  # 4 points in R^2
    ],
)
def test_degenerate_simplex_gives_minus_inf_not_nan(vertices):
    value = log_volume(vertices)
    assert value.item() == -math.inf


def test_single_vertex_has_log_volume_zero():
    assert float(log_volume(torch.ones((1, 5)))) == 0.0


def test_thin_simplex_matches_qr_free_reference_in_float64():
    # Height / edge = 1e-6: the Gram determinant cancels, the QR form does not.
    base = torch.zeros((3, 50), dtype=torch.float64)
    base[1, 0] = 1.0
    base[2, 0] = 0.5
    base[2, 1] = 1e-6
    expected = math.log(0.5 * 1.0 * 1e-6)
    assert float(log_volume(base)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("k_frozen", [1, 2, 4])
def test_incremental_volume_equals_full_volume_and_its_gradient_is_the_height(k_frozen):
    generator = torch.Generator().manual_seed(k_frozen)
    frozen = torch.randn((k_frozen, 40), generator=generator)
    new = torch.randn(40, generator=generator, dtype=torch.float32, requires_grad=True)
    incremental = IncrementalLogVolume(frozen)
    value = incremental(new)
    full = log_volume(torch.cat([frozen, new.detach()[None]]))
    assert value.item() == pytest.approx(float(full), abs=1e-9)
    value.backward()
    h = incremental.height(new.detach())
    np.testing.assert_allclose(new.grad.numpy(), (h / h.dot(h)).numpy(), rtol=1e-5, atol=1e-7)


def test_full_volume_is_differentiable():
    vertices = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    log_volume(vertices).backward()
    assert torch.isfinite(vertices.grad).all()
    # Moving the apex (0, 3) up increases the area: d log A / d y = 1 / 3.
    assert float(vertices.grad[2, 1]) == pytest.approx(1 / 3, rel=1e-9)
