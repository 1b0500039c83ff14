"""The vertex-training module: vectorised path == loop path, gradients, loss."""

import copy

import pytest
import torch

from skspro._training import VertexModule, vertex_start
from skspro.modules import MLP
from skspro.simplex import StackedVertices, log_volume, make_generator, module_buffers


def _vertex_module(sampling, n_train_samples=3, seed=0):
    torch.manual_seed(seed)
    base = MLP(5, 4, hidden_units=(7,))
    simplex = StackedVertices.from_module(base).append(dict(MLP(5, 4, hidden_units=(7,)).named_parameters()))
    start = vertex_start(simplex, make_generator(1))
    return base, VertexModule(base, simplex, start, module_buffers(base), n_train_samples, sampling, seed=2)


@pytest.mark.parametrize("sampling", ["split", "full"])
@pytest.mark.parametrize("n_rows", [9, 10, 2])
def test_vectorised_and_looped_training_forward_agree(sampling, n_rows):
    _, module = _vertex_module(sampling)
    looped = copy.deepcopy(module)
    looped.vectorize = False
    assert module.vectorize
    x = torch.randn((n_rows, 5), generator=make_generator(3))
    out_vmap = module(x)
    out_loop = looped(x)
    expected_rows = n_rows * 3 if sampling == "full" else n_rows
    assert out_vmap.shape == out_loop.shape == (expected_rows, 4)
    torch.testing.assert_close(out_vmap, out_loop, rtol=1e-5, atol=1e-6)
    out_vmap.square().sum().backward()
    out_loop.square().sum().backward()
    for a, b in zip(module.vertex, looped.vertex):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_only_the_new_vertex_is_trainable_and_the_member_is_untouched():
    base, module = _vertex_module("split")
    before = {name: p.clone() for name, p in base.state_dict().items()}
    trainable = [p for p in module.parameters() if p.requires_grad]
    assert len(trainable) == len(list(base.parameters()))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    frozen_before = module.frozen_0.clone()
    for _ in range(3):
        optimizer.zero_grad()
        loss = module(torch.randn(6, 5)).square().mean() - module.log_volume()
        loss.backward()
        optimizer.step()
    assert torch.equal(module.frozen_0, frozen_before)
    for name, value in base.state_dict().items():
        assert torch.equal(value, before[name])


def test_training_log_volume_equals_the_full_simplex_volume():
    _, module = _vertex_module("split")
    stacked = StackedVertices(
        {
            name: torch.cat([getattr(module, f"frozen_{i}"), module.vertex[i].detach()[None]])
            for i, name in enumerate(module.names)
        }
    )
    assert module.log_volume().item() == pytest.approx(float(log_volume(stacked.flat())), abs=1e-9)


def test_vertex_start_is_near_the_centroid_but_not_on_it():
    torch.manual_seed(0)
    simplex = StackedVertices.from_module(MLP(5, 4, hidden_units=(7,)))
    start = vertex_start(simplex, make_generator(0))
    flat_start = torch.cat([t.reshape(-1) for t in start.values()])
    flat_mode = simplex.flat()[0]
    relative = float((flat_start - flat_mode).norm() / flat_mode.norm())
    assert 1e-3 < relative < 0.05
    assert torch.isfinite(log_volume(torch.stack([flat_mode, flat_start])))


def test_split_sampling_gives_every_network_rows_and_batchnorm_at_least_two():
    _, module = _vertex_module("split", n_train_samples=5)
    assert module._split_sizes(6, 5) == [2, 1, 1, 1, 1]
    assert module._n_samples(6) == 5 and module._n_samples(3) == 3
    torch.manual_seed(0)
    base = MLP(5, 4, hidden_units=(7,), batch_norm=True)
    simplex = StackedVertices.from_module(base)
    bn_module = VertexModule(
        base, simplex, vertex_start(simplex, make_generator(0)), module_buffers(base), 5, "split", seed=1
    )
    assert not bn_module.vectorize
    # A last minibatch of 3 rows: at most one network per two rows, so
    # train-mode BatchNorm never sees a single row.
    assert bn_module._n_samples(3) == 1
    assert bn_module(torch.randn(3, 5)).shape == (3, 4)
    assert bn_module(torch.randn(11, 5)).shape == (11, 4)
