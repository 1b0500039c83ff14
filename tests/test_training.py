"""The vertex-training module: fast step == autograd formulation, gradients, loss."""

import copy

import pytest
import torch

from skspro._training import VertexModule, vertex_start
from skspro.modules import MLP
from skspro.simplex import StackedVertices, log_volume, make_generator, module_buffers


@pytest.fixture(scope="module")
def wine():
    import numpy as np
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _vertex_module(sampling, n_train_samples=3, seed=0):
    torch.manual_seed(seed)
    base = MLP(5, 4, hidden_units=(7,))
    simplex = StackedVertices.from_module(base).append(dict(MLP(5, 4, hidden_units=(7,)).named_parameters()))
    start = vertex_start(simplex, make_generator(1))
    return base, VertexModule(base, simplex, start, module_buffers(base), n_train_samples, sampling, seed=2)


def _reference_step(module, x, y, reg):
    """The direct formulation: outputs of all sampled networks, one criterion, autograd."""
    out = module(x)
    repeats = out.shape[0] // y.shape[0]
    loss = torch.nn.functional.cross_entropy(out, y.repeat(repeats)) - reg * module.log_volume()
    loss.backward()
    return loss


@pytest.mark.parametrize("sampling", ["split", "full"])
@pytest.mark.parametrize("n_rows", [9, 10, 2])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_fast_step_equals_the_autograd_formulation(sampling, n_rows, batch_norm):
    torch.manual_seed(0)

    def make():
        return MLP(5, 4, hidden_units=(7,), dropout=0.2, batch_norm=batch_norm)

    base = make()
    simplex = StackedVertices.from_module(base)
    for _ in range(2):  # a pool of 3 vertices, 2 faces: the connector case
        simplex = simplex.append(dict(make().named_parameters()))
    start = vertex_start(simplex, make_generator(1))
    faces = [[0, 1], [1, 2]]
    fast = VertexModule(base, simplex, start, module_buffers(base), 3, sampling, seed=2, faces=faces)
    reference = copy.deepcopy(fast)
    x = torch.randn((n_rows, 5), generator=make_generator(3))
    y = torch.randint(4, (n_rows,), generator=make_generator(4))
    for step in range(3):  # the new vertex moves between steps
        torch.manual_seed(step)  # the same dropout masks
        expected = _reference_step(reference, x, y, reg=0.3)
        torch.manual_seed(step)
        got = fast.train_step(x, y, torch.nn.functional.cross_entropy, reg=0.3)
        torch.testing.assert_close(got["loss"], expected.detach().float(), rtol=1e-5, atol=1e-6)
        # BatchNorm over 2 rows amplifies rounding: atol 1e-5 against gradients of order 1.
        torch.testing.assert_close(fast.vertex.grad, reference.vertex.grad, rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            for module in (fast, reference):
                module.vertex -= 0.5 * module.vertex.grad
                module.vertex.grad = None
    for a, b in zip(fast.forward_buffers().values(), reference.forward_buffers().values()):
        torch.testing.assert_close(a, b)  # the same running statistics updates


def test_analytic_volume_gradient_equals_autograd():
    _, module = _vertex_module("split")
    value, gradient = module.log_volume_and_gradient()
    module.log_volume().backward()
    assert float(value) == pytest.approx(float(module.log_volume().detach()), abs=1e-12)
    torch.testing.assert_close(gradient, module.vertex.grad)


def test_only_the_new_vertex_is_trainable_and_the_member_is_untouched():
    base, module = _vertex_module("split")
    before = {name: p.clone() for name, p in base.state_dict().items()}
    trainable = [p for p in module.parameters() if p.requires_grad]
    assert [p.numel() for p in trainable] == [sum(p.numel() for p in base.parameters())]
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    frozen_before = module.pool.clone()
    for _ in range(3):
        optimizer.zero_grad()
        loss = module(torch.randn(6, 5)).square().mean() - module.log_volume()
        loss.backward()
        optimizer.step()
    assert torch.equal(module.pool, frozen_before)
    for name, value in base.state_dict().items():
        assert torch.equal(value, before[name])


def test_training_log_volume_equals_the_full_simplex_volume():
    _, module = _vertex_module("split")
    flat = torch.cat([module.pool, module.vertex.detach()[None]])
    assert module.log_volume().item() == pytest.approx(float(log_volume(flat)), abs=1e-9)


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
    # A last minibatch of 3 rows: at most one network per two rows, so
    # train-mode BatchNorm never sees a single row.
    assert bn_module._n_samples(3) == 1
    assert bn_module(torch.randn(3, 5)).shape == (3, 4)
    assert bn_module(torch.randn(11, 5)).shape == (11, 4)


def _fit_vertex_net(module, X, y, *, fast, **params):
    """A VertexNet on ``module`` fitted from a fixed global seed (the same dropout and shuffling)."""
    from skspro._training import VertexNet

    settings = dict(criterion=torch.nn.CrossEntropyLoss, batch_size=16, train_split=None, verbose=0, reg=0.05)
    settings.update(iterator_train__shuffle=True, **params)
    net = VertexNet(module=module, fast=fast, **settings)
    torch.manual_seed(5)
    return net.fit(X, y)


@pytest.mark.parametrize("sampling, n_train_samples", [("split", 1), ("split", 3), ("full", 2)])
def test_vertex_net_fast_path_trains_the_same_vertex_as_skorchs_own_step(sampling, n_train_samples):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 5)).astype(np.float32)
    y = rng.integers(0, 4, 50)
    results = []
    for fast in (True, False):
        base, module = _vertex_module(sampling, n_train_samples=n_train_samples)
        net = _fit_vertex_net(module, X, y, fast=fast, optimizer=torch.optim.Adam, lr=0.01, max_epochs=3)
        results.append((module.new_vertex(), net.history))
    (fast_vertex, fast_history), (ref_vertex, ref_history) = results
    for name in fast_vertex:
        torch.testing.assert_close(fast_vertex[name], ref_vertex[name], rtol=1e-4, atol=1e-5)
    for key in ("train_loss", "ce_loss", "log_volume"):
        np.testing.assert_allclose(fast_history[:, key], ref_history[:, key], rtol=1e-5)


def test_a_copied_or_pickled_vertex_module_binds_afresh():
    import pickle

    _, module = _vertex_module("split", n_train_samples=1)
    x = torch.randn((8, 5), generator=make_generator(3))
    y = torch.randint(4, (8,), generator=make_generator(4))
    module.train_step(x, y, torch.nn.functional.cross_entropy, reg=0.1)  # binds
    for copy_of in (copy.deepcopy(module), pickle.loads(pickle.dumps(module))):
        reference = copy.deepcopy(copy_of)
        copy_of.vertex.grad = reference.vertex.grad = None
        torch.manual_seed(0)
        got = copy_of.train_step(x, y, torch.nn.functional.cross_entropy, reg=0.1)
        torch.manual_seed(0)
        expected = _reference_step(reference, x, y, reg=0.1)
        torch.testing.assert_close(got["loss"], expected.detach().float(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(copy_of.vertex.grad, reference.vertex.grad, rtol=1e-4, atol=1e-6)


def test_frozen_parameters_of_the_users_module_are_vertex_coordinates_in_both_paths():
    base, module = _vertex_module("split", n_train_samples=1)
    next(base.parameters()).requires_grad_(False)
    fast = VertexModule(
        base,
        StackedVertices.from_module(base),
        vertex_start(StackedVertices.from_module(base), make_generator(1)),
        module_buffers(base),
        1,
        "split",
        seed=2,
    )
    reference = copy.deepcopy(fast)
    x = torch.randn((8, 5), generator=make_generator(3))
    y = torch.randint(4, (8,), generator=make_generator(4))
    fast.train_step(x, y, torch.nn.functional.cross_entropy, reg=0.1)
    _reference_step(reference, x, y, reg=0.1)
    torch.testing.assert_close(fast.vertex.grad, reference.vertex.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("sampling, n_train_samples", [("split", 1), ("split", 3), ("full", 2)])
@pytest.mark.parametrize("weights", ["class", "sample", "both", "zeros"])
def test_weighted_fast_step_trains_the_same_vertex_as_skorchs_own_step(sampling, n_train_samples, weights):
    """Class weights (the criterion's), sample weights (with the inputs), both,
    and rows of zero weight: the fast path weights each part of a split
    minibatch by its share of the weighted mean, as the loss over all rows does."""
    import numpy as np

    from skspro._weights import weighted_inputs

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5)).astype(np.float32)
    y = rng.integers(0, 4, 40)
    sample_weight = rng.uniform(0.2, 3.0, 40).astype(np.float32)
    if weights == "zeros":
        sample_weight[::3] = 0.0
        sample_weight[:8] = 0.0  # a whole part of the first minibatch
    params = dict(optimizer=torch.optim.SGD, lr=0.1, max_epochs=2)
    if weights in ("class", "both"):
        params["criterion__weight"] = torch.tensor([1.0, 3.0, 0.5, 2.0])
    inputs = X if weights == "class" else weighted_inputs(X, sample_weight)
    results = []
    for fast in (True, False):
        _, module = _vertex_module(sampling, n_train_samples=n_train_samples)
        net = _fit_vertex_net(module, inputs, y, fast=fast, **params)
        assert net._fast_step_is_exact(X, {}) == fast
        results.append((module.vertex.detach(), net.history[:, "ce_loss"]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5)


def test_vertex_weight_decay_scales_the_vertex_by_the_steps_learning_rate():
    from types import SimpleNamespace

    from skspro._training import AUTO_DECAY_PER_EPOCH, VertexWeightDecay
    from skspro.modules import MLP

    vertex = torch.nn.Parameter(torch.tensor([1.0, -2.0, 4.0]))
    net = SimpleNamespace(
        lr=0.1,
        optimizer_=SimpleNamespace(param_groups=[{"lr": 0.1}]),
        module_=SimpleNamespace(vertex=vertex, base=MLP(4, 3)),
        get_dataset=lambda X, y: X,
        get_iterator=lambda dataset, training: [dataset[i : i + 2] for i in range(0, len(dataset), 2)],
    )
    auto = VertexWeightDecay("auto")
    auto.on_train_begin(net, X=list(range(5)), y=None)  # 3 batches of at most 2 rows
    assert auto.weight_decay_ == pytest.approx(AUTO_DECAY_PER_EPOCH / (0.1 * 3))
    decay = VertexWeightDecay(0.5)
    decay.on_train_begin(net, X=list(range(5)), y=None)
    assert decay.weight_decay_ == 0.5
    decay.on_batch_end(net, training=False)  # validation batches leave it alone
    torch.testing.assert_close(vertex.detach(), torch.tensor([1.0, -2.0, 4.0]))
    decay.on_batch_end(net, training=True)
    torch.testing.assert_close(vertex.detach(), torch.tensor([1.0, -2.0, 4.0]) * 0.95)
    net.optimizer_.param_groups[0]["lr"] = 0.02  # it follows the schedule
    decay.on_batch_end(net, training=True)
    torch.testing.assert_close(vertex.detach(), torch.tensor([1.0, -2.0, 4.0]) * 0.95 * 0.99)


def test_vertex_weight_decay_shrinks_the_trained_vertices_and_leaves_the_members(wine):

    from skspro import ESPROClassifier, default_estimator

    X, y = wine
    template = default_estimator().set_params(max_epochs=3, module__hidden_units=(16,))
    settings = dict(n_members=1, n_vertices=2, vertex_epochs=3, random_state=0)
    fits = [ESPROClassifier(template, vertex_weight_decay=wd, **settings).fit(X, y) for wd in (0.0, 20.0)]
    plain, decayed = (fit.estimators_[0] for fit in fits)
    for a, b in zip(plain.module_.parameters(), decayed.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b)  # members are trained without it
    norms = [[float(v.norm()) for v in fit.simplexes_[0].flat()[1:]] for fit in fits]
    assert all(d < p for d, p in zip(norms[1], norms[0], strict=True)), norms


def test_auto_vertex_weight_decay_is_for_fully_connected_networks_and_per_epoch():
    from skspro._training import AUTO_DECAY_PER_EPOCH, resolve_vertex_weight_decay
    from skspro.modules import MLP, SmallCNN

    nn = torch.nn
    fully_connected = [
        MLP(4, 3),
        MLP(4, 3, batch_norm=True, dropout=0.2),
        nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 3)),
    ]
    for module in fully_connected:
        for lr, n_steps in [(1e-3, 1), (0.1, 1), (1e-3, 7)]:
            decay = resolve_vertex_weight_decay("auto", module, lr, n_steps=n_steps)
            # an epoch at the start learning rate shrinks the vertex by AUTO_DECAY_PER_EPOCH
            assert lr * decay * n_steps == pytest.approx(AUTO_DECAY_PER_EPOCH)
        # calibrated to the members' learning rate: a vertex trained at a quarter of it
        # decays a quarter as much per epoch, as AdamW would
        decay = resolve_vertex_weight_decay("auto", module, 2.5e-4, n_steps=4, member_lr=1e-3)
        assert 2.5e-4 * decay * 4 == pytest.approx(AUTO_DECAY_PER_EPOCH / 4)
        # a vertex rate far above the members' never removes more than 3 % in one step
        decay = resolve_vertex_weight_decay("auto", module, 1e14, n_steps=4, member_lr=1e-3)
        assert 1e14 * decay == pytest.approx(AUTO_DECAY_PER_EPOCH)
    others = [
        SmallCNN(),
        nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(4, 3)),
        nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 3)),
        nn.Sequential(nn.ReLU()),  # no parameters
    ]
    for module in others:
        assert resolve_vertex_weight_decay("auto", module, 1e-3, n_steps=5) == 0.0, module
    assert resolve_vertex_weight_decay(0.25, SmallCNN(), 1e-3, n_steps=5) == 0.25
    assert resolve_vertex_weight_decay(0.25, MLP(4, 3), 1e-3, n_steps=5) == 0.25  # a number is taken as given


@pytest.mark.parametrize(
    "loader, n_steps",
    [
        ({}, 3),  # 178 rows in batches of 64
        ({"batch_size": 50}, 4),
        ({"iterator_train__batch_size": 32}, 6),  # skorch's override of batch_size for training
        ({"batch_size": 32, "iterator_train__drop_last": True}, 5),  # the last, partial batch dropped
        ({"batch_size": -1}, 1),
    ],
)
def test_auto_vertex_weight_decay_counts_the_steps_skorch_takes(loader, n_steps, wine):
    import numpy as np

    from skspro import ESPROClassifier, default_estimator
    from skspro._training import AUTO_DECAY_PER_EPOCH

    X, y = wine
    template = default_estimator().set_params(max_epochs=2, module__hidden_units=(8,), **loader)
    settings = dict(n_members=1, vertex_epochs=2, n_samples=3, random_state=0)
    fits = [
        ESPROClassifier(template, vertex_weight_decay=wd, **settings).fit(X, y)
        for wd in ("auto", AUTO_DECAY_PER_EPOCH / (template.lr * n_steps), 0.0)
    ]
    assert len(fits[0].vertex_histories_[0][0][0]["batches"]) == n_steps  # what skorch took
    # the value "auto" stood for is in the vertex's history, every epoch
    assert (
        fits[0].vertex_histories_[0][0][:, "vertex_weight_decay"]
        == [pytest.approx(AUTO_DECAY_PER_EPOCH / (template.lr * n_steps))] * 2
    )
    auto, explicit, off = (model.predict_proba(X) for model in fits)
    np.testing.assert_array_equal(auto, explicit)
    assert not np.array_equal(auto, off)


def test_vertex_weight_decay_that_would_flip_the_vertex_is_refused_before_training(monkeypatch):
    import numpy as np

    from skspro import ESPROClassifier, _base, default_estimator
    from skspro._training import check_vertex_weight_decay, resolve_vertex_weight_decay
    from skspro.modules import MLP

    check_vertex_weight_decay("auto", 10.0)
    assert resolve_vertex_weight_decay(9.0, MLP(4, 3), 0.1, n_steps=1) == 9.0
    with pytest.raises(ValueError, match=r"choose a value below 1 / lr"):
        resolve_vertex_weight_decay(10.0, MLP(4, 3), 0.1, n_steps=1)

    def no_training(*args, **kwargs):
        raise AssertionError("members were trained before the settings were checked")

    monkeypatch.setattr(_base, "fit_members", no_training)
    X, y = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), np.arange(20) % 2
    template = default_estimator().set_params(lr=0.01)
    for params in ({"vertex_weight_decay": 100.0}, {"vertex_weight_decay": 10.0, "vertex_lr": 0.1}):
        with pytest.raises(ValueError, match=r"vertex_weight_decay=.* choose a value below 1 / lr"):
            ESPROClassifier(template, n_members=1, **params).fit(X, y)


def test_a_template_holding_a_module_object_warns_that_members_share_their_start():
    import numpy as np
    from skorch import NeuralNetClassifier

    from skspro import DeepEnsembleClassifier
    from skspro.modules import MLP

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)).astype(np.float32), np.tile([0, 1], 20)
    settings = dict(max_epochs=1, train_split=None, verbose=0, criterion=torch.nn.CrossEntropyLoss)
    with pytest.warns(UserWarning, match="module is a torch.nn.Module object") as record:
        DeepEnsembleClassifier(NeuralNetClassifier(MLP(4, 2), **settings), n_members=2).fit(X, y)
    assert record[0].filename == __file__  # it points at the user's call
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DeepEnsembleClassifier(NeuralNetClassifier(MLP(4, 2), **settings), n_members=1).fit(X, y)
        DeepEnsembleClassifier(
            NeuralNetClassifier(MLP, module__input_dim=4, module__n_classes=2, **settings), n_members=2
        ).fit(X, y)


class _PerRowLoader(torch.utils.data.DataLoader):
    """A DataLoader that VertexNet does not recognise as plain: skorch's own per-row path."""


@pytest.mark.parametrize("loader", [{}, {"iterator_train__drop_last": True, "batch_size": 32}])
@pytest.mark.parametrize("weighted", [False, True])
def test_vertex_training_fetches_whole_minibatches_with_the_same_results(loader, weighted, wine):
    import numpy as np

    from skspro import ESPROClassifier, default_estimator

    X, y = wine
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    settings = dict(n_members=1, vertex_epochs=3, n_samples=3, random_state=0)
    fits = []
    for iterator in (torch.utils.data.DataLoader, _PerRowLoader):
        template = default_estimator().set_params(
            max_epochs=2, module__hidden_units=(8,), iterator_train=iterator, **loader
        )
        fits.append(ESPROClassifier(template, **settings).fit(X, y, sample_weight=weights))
    batched, per_row = fits
    np.testing.assert_array_equal(batched.predict_proba(X), per_row.predict_proba(X))
    history = [h[0]["batches"] for h in (batched.vertex_histories_[0][0], per_row.vertex_histories_[0][0])]
    assert [b["train_batch_size"] for b in history[0]] == [b["train_batch_size"] for b in history[1]]


def test_a_template_setting_optimizer__lr_trains_vertices_at_vertex_lr_and_calibrates_auto_to_it(wine):
    import numpy as np

    from skspro import ESPROClassifier, default_estimator

    X, y = wine
    # skorch's optimizer__lr overrides lr: the members train at 1e-2
    template = default_estimator().set_params(
        max_epochs=2, module__hidden_units=(8,), lr=1e-3, optimizer__lr=1e-2
    )
    settings = dict(n_members=1, vertex_epochs=2, n_samples=3, random_state=0)
    own = ESPROClassifier(template, vertex_lr=1e-4, vertex_weight_decay=0.0, **settings).fit(X, y)
    assert own.vertex_histories_[0][0][0]["event_lr"] == pytest.approx(1e-4)
    inherited = ESPROClassifier(template, vertex_weight_decay=0.0, **settings).fit(X, y)
    assert inherited.vertex_histories_[0][0][0]["event_lr"] == pytest.approx(1e-2)
    # "auto" and the refusal use the rate the members really trained at
    auto, explicit = (
        ESPROClassifier(template, vertex_weight_decay=wd, **settings).fit(X, y).predict_proba(X)
        for wd in ("auto", 0.03 / (1e-2 * 3))  # 178 rows in batches of 64: 3 steps
    )
    np.testing.assert_array_equal(auto, explicit)
    with pytest.raises(ValueError, match="choose a value below 1 / lr"):
        ESPROClassifier(template, vertex_weight_decay=150.0, **settings).fit(X, y)


def test_a_template_with_a_sampler_grows_its_vertices(wine):
    import numpy as np
    from skorch import NeuralNetClassifier

    from skspro import ESPROClassifier
    from skspro.modules import MLP

    X, y = wine
    sampler = torch.utils.data.WeightedRandomSampler(
        np.ones(len(y)), num_samples=len(y), generator=torch.Generator().manual_seed(0)
    )
    template = NeuralNetClassifier(  # no shuffle setting: a sampler excludes it
        MLP,
        module__input_dim=13,
        module__n_classes=3,
        module__hidden_units=(8,),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        max_epochs=2,
        train_split=None,
        iterator_train__sampler=sampler,
    )
    # not "holdout" (the default), which refuses a template's sampler: its probe trains on half the rows
    model = ESPROClassifier(
        template, n_members=1, vertex_epochs=2, n_samples=3, random_state=0, vertex_weight_decay="auto"
    ).fit(X, y)
    assert len(model.vertex_histories_[0][0]) == 2 and np.isfinite(model.predict_proba(X)).all()
