"""Sampled networks of a simplex for unmodified modules: vectorised == naive."""

import copy

import pytest
import torch
from torch import nn

from skspro.modules import MLP, SmallCNN
from skspro.simplex import (
    StackedVertices,
    forward_networks,
    forward_networks_loop,
    make_generator,
    module_buffers,
    norm_buffer_names,
    recompute_norm_statistics,
    sample_simplex_weights,
    supports_stacked,
)
from skspro.simplex.stacked import Unsupported


class Nested(nn.Module):
    """LayerNorm, dropout, a nested block and a non-parameter buffer."""

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(6, 12), nn.LayerNorm(12), nn.GELU(), nn.Dropout(0.3))
        self.inner = nn.ModuleDict({"head": nn.Linear(12, 3)})
        self.register_buffer("shift", torch.linspace(-1, 1, 6))

    def forward(self, x):
        return self.inner["head"](self.block(x + self.shift))


def _conv_chain():
    """Grouped and strided convolutions, BatchNorm2d, pooling, flatten, a bias-free linear."""
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, groups=2, bias=False),
        nn.BatchNorm2d(4),
        nn.Tanh(),
        nn.AvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 3, bias=False),
    )


class Functions(nn.Module):
    """Element-wise functions and torch.flatten inside forward."""

    def __init__(self):
        super().__init__()
        self.first, self.norm, self.last = nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3)

    def forward(self, x):
        return self.last(torch.relu(self.norm(self.first(torch.flatten(x, 1)))))


CASES = {
    "mlp": (lambda: MLP(6, 3, hidden_units=(16, 8)), (6,)),
    "cnn_plain": (lambda: SmallCNN(n_classes=4, channels=4, batch_norm=False), (1, 8, 8)),
    "conv_chain": (_conv_chain, (2, 7, 7)),
    "batchnorm_first": (lambda: nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 3)), (6,)),
    "functions": (Functions, (6,)),
    "mlp_batchnorm": (lambda: MLP(6, 3, hidden_units=(16,), batch_norm=True, dropout=0.2), (6,)),
    "cnn_batchnorm": (lambda: SmallCNN(n_classes=4, channels=4), (1, 8, 8)),
    "nested_layernorm_dropout": (Nested, (6,)),
}


def _random_simplex(make_module, n_vertices, seed):
    """A simplex of independently initialised copies of one architecture."""
    torch.manual_seed(seed)
    modules = [make_module() for _ in range(n_vertices)]
    simplex = StackedVertices.from_module(modules[0])
    for module in modules[1:]:
        simplex = simplex.append(dict(module.named_parameters()))
    # Non-trivial BatchNorm statistics, so that buffers matter.
    for name, buffer in modules[0].named_buffers():
        if name.endswith("running_mean"):
            buffer.normal_()
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
    return modules[0], simplex


def _reference_outputs(module, params, buffers, x):
    """One deep copy of the module per network, loaded with a state dict."""
    outputs = []
    for s in range(next(iter(params.values())).shape[0]):
        network = copy.deepcopy(module).eval()
        network.load_state_dict({**{name: p[s] for name, p in params.items()}, **buffers})
        outputs.append(network(x))
    return torch.stack(outputs)


# "functions" (torch.relu inside a custom forward, no forward_chain) and
# "nested_layernorm_dropout" have no stacked form: they fall back to vmap.
STACKED = {"mlp", "mlp_batchnorm", "cnn_batchnorm", "cnn_plain", "conv_chain", "batchnorm_first"}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("n_rows", [1, 32, 300])
def test_stacked_vmap_loop_and_reference_agree(case, n_rows):
    make_module, row_shape = CASES[case]
    module, simplex = _random_simplex(make_module, 3, seed=0)
    module.eval()
    before = {name: p.clone() for name, p in module.state_dict().items()}
    weights = sample_simplex_weights(3, 5, make_generator(1))
    params = simplex.combine(weights)
    buffers = module_buffers(module)
    x = torch.randn((n_rows, *row_shape), generator=make_generator(2))
    with torch.no_grad():
        reference = _reference_outputs(module, params, buffers, x)
        looped = forward_networks_loop(module, params, buffers, x)
        vmapped = forward_networks(module, params, buffers, x, method="vmap", network_chunk=2, row_chunk=64)
        auto = forward_networks(module, params, buffers, x)
        if case in STACKED:
            assert supports_stacked(module)
            stacked = forward_networks(module, params, buffers, x, method="stacked", network_chunk=2)
            torch.testing.assert_close(stacked, reference, rtol=1e-5, atol=1e-5)
        else:
            assert not supports_stacked(module)
            with pytest.raises(Unsupported):
                forward_networks(module, params, buffers, x, method="stacked")
    assert vmapped.shape == (5, n_rows, reference.shape[-1])
    torch.testing.assert_close(looped, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(vmapped, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(auto, reference, rtol=1e-5, atol=1e-5)
    # The user's module is never modified.
    for name, value in module.state_dict().items():
        assert torch.equal(value, before[name])


def test_combine_is_the_weighted_sum_of_vertices():
    _, simplex = _random_simplex(CASES["mlp"][0], 4, seed=3)
    weights = sample_simplex_weights(4, 6, make_generator(0))
    combined = simplex.combine(weights)
    for name, stacked in simplex.params.items():
        for s in range(6):
            expected = sum(weights[s, i] * stacked[i] for i in range(4))
            torch.testing.assert_close(combined[name][s], expected)
    # A vertex's own weights give that vertex exactly.
    one_hot = torch.eye(4)[[2]]
    for name, value in simplex.combine(one_hot).items():
        assert torch.equal(value[0], simplex.params[name][2])


def test_per_network_buffers_are_used():
    module, simplex = _random_simplex(CASES["mlp_batchnorm"][0], 2, seed=4)
    module.eval()
    params = simplex.combine(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    buffers = module_buffers(module)
    names = norm_buffer_names(module)
    batched = {n: torch.stack([b, b]) for n, b in buffers.items() if n in names}
    batched["layers.1.running_mean"][1] += 3.0  # second network: other statistics
    x = torch.randn((10, 6), generator=make_generator(0))
    assert supports_stacked(module)  # "auto" takes the stacked path here
    with torch.no_grad():
        out = forward_networks(module, params, {**buffers, **batched}, x, batched_buffers=frozenset(names))
        out_loop = forward_networks_loop(module, params, {**buffers, **batched}, x, frozenset(names))
    assert not torch.allclose(out[0], out[1])
    torch.testing.assert_close(out, out_loop, rtol=1e-5, atol=1e-5)


def test_norm_statistics_match_a_train_mode_pass_per_network():
    make_module, row_shape = CASES["cnn_batchnorm"]
    module, simplex = _random_simplex(make_module, 3, seed=5)
    module.eval()
    before = {name: p.clone() for name, p in module.state_dict().items()}
    weights = sample_simplex_weights(3, 4, make_generator(0))
    params = simplex.combine(weights)
    data = torch.randn((96, *row_shape), generator=make_generator(1))
    batches = list(data.split(32))
    stats = recompute_norm_statistics(module, params, module_buffers(module), batches)
    assert set(stats) == norm_buffer_names(module)
    for s in range(4):
        # Reference: a fresh module with these weights, statistics reset,
        # cumulative average (momentum=None) over the same batches.
        reference = copy.deepcopy(module)
        reference.load_state_dict({**{n: p[s] for n, p in params.items()}}, strict=False)
        for layer in reference.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.reset_running_stats()
                layer.momentum = None
        reference.train()
        with torch.no_grad():
            for batch in batches:
                reference(batch)
        for name, value in reference.state_dict().items():
            if name in stats:
                torch.testing.assert_close(stats[name][s], value, rtol=1e-5, atol=1e-6)
    for name, value in module.state_dict().items():
        assert torch.equal(value, before[name])


def test_module_without_norm_layers_has_no_statistics():
    module = MLP(4, 2)
    params = StackedVertices.from_module(module).params
    assert recompute_norm_statistics(module, params, module_buffers(module), [torch.zeros(2, 4)]) == {}


def test_stacked_vertices_reject_mismatched_vertex():
    simplex = StackedVertices.from_module(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="does not match"):
        simplex.append({"weight": torch.zeros(2, 3)})


def test_wide_forward_reads_the_structure_afresh_and_refuses_hooks():
    module, simplex = _random_simplex(
        lambda: nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), 2, 0
    )
    module.eval()
    params = simplex.combine(sample_simplex_weights(2, 4, make_generator(1)))
    buffers = module_buffers(module)
    x = torch.randn((3, 6), generator=make_generator(2))
    with torch.no_grad():
        forward_networks(module, params, buffers, x)
        module[1] = nn.Tanh()  # changed after a first call: honoured
        torch.testing.assert_close(
            forward_networks(module, params, buffers, x, method="stacked"),
            forward_networks_loop(module, params, buffers, x),
        )
        handle = module[2].register_forward_hook(lambda m, i, out: out * 2)
        assert not supports_stacked(module)
        torch.testing.assert_close(
            forward_networks(module, params, buffers, x), forward_networks_loop(module, params, buffers, x)
        )
        handle.remove()
        assert supports_stacked(module)


def test_batchnorm2d_on_flat_rows_is_not_given_a_wide_form():
    module = nn.Sequential(nn.BatchNorm2d(6)).eval()
    params = StackedVertices.from_module(module).combine(torch.ones((2, 1)))
    with pytest.raises(Unsupported):
        forward_networks(module, params, module_buffers(module), torch.randn(3, 6), method="stacked")
