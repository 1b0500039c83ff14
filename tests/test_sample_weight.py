"""sample_weight, class_weight, metadata routing, estimator_ and the default
template's settings: scikit-learn code moved onto skspro as it is."""

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from skorch import NeuralNetClassifier

from skspro import DeepEnsembleClassifier, ESPROClassifier, SPROConnector, default_estimator
from skspro._weights import RowWeightsMixin, weighted_inputs
from skspro.modules import MLP


@pytest.fixture(scope="module")
def imbalanced():
    X, y = make_classification(
        240, 6, n_informative=4, n_redundant=0, n_classes=3, weights=[0.75, 0.18, 0.07], random_state=0
    )
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _template(**params):
    settings = dict(max_epochs=4, lr=1e-2, module__hidden_units=(16,))
    settings.update(params)
    return default_estimator().set_params(**settings)


def _estimators(template):
    return [
        DeepEnsembleClassifier(template, n_members=2, random_state=0),
        ESPROClassifier(template, n_members=1, n_vertices=1, vertex_epochs=2, n_samples=3, random_state=0),
        SPROConnector(template, n_modes=2, n_connectors=1, connector_epochs=2, n_samples=3, random_state=0),
    ]


# ---------------------------------------------------------------- the loss
class _Net(RowWeightsMixin, NeuralNetClassifier):
    pass


@pytest.mark.parametrize(
    "criterion, reduction, class_weight, proba",
    [
        (torch.nn.CrossEntropyLoss, "mean", None, False),
        (torch.nn.CrossEntropyLoss, "mean", [1.0, 3.0, 0.5], False),
        (torch.nn.CrossEntropyLoss, "sum", [1.0, 3.0, 0.5], False),
        (torch.nn.NLLLoss, "mean", [2.0, 1.0, 0.25], True),
    ],
)
def test_a_minibatch_loss_is_the_weighted_mean_of_its_rows(criterion, reduction, class_weight, proba):
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(size=(7, 3)))
    y = torch.tensor(rng.integers(0, 3, 7))
    s = rng.uniform(0, 2, 7)
    params = {"criterion__reduction": reduction}
    if class_weight is not None:
        params["criterion__weight"] = torch.tensor(class_weight, dtype=torch.float64)
    net = _Net(MLP, module__input_dim=2, module__n_classes=3, criterion=criterion, **params).initialize()
    y_pred = torch.softmax(logits, 1) if proba else logits
    got = net.get_loss(y_pred, y, X=weighted_inputs(None, torch.tensor(s)))
    # numpy reference: sum_i s_i c[y_i] l_i / sum_i s_i c[y_i]
    log_p = torch.log_softmax(logits, 1).numpy()[np.arange(7), y.numpy()]
    c = np.ones(3) if class_weight is None else np.asarray(class_weight)
    r = s * c[y.numpy()]
    expected = -(r * log_p).sum() / (1.0 if reduction == "sum" else r.sum())
    np.testing.assert_allclose(float(got), expected, rtol=1e-6 if not proba else 1e-5)
    # without weights: the criterion's own loss
    torch.testing.assert_close(net.get_loss(y_pred, y), NeuralNetClassifier.get_loss(net, y_pred, y))


# ------------------------------------------------------- what holds exactly
@pytest.mark.parametrize("make", [0, 1, 2], ids=["deep-ensemble", "espro", "connector"])
def test_equal_weights_are_the_unweighted_fit_bit_for_bit(imbalanced, make):
    X, y = imbalanced
    plain = _estimators(_template())[make].fit(X, y)
    weighted = _estimators(_template())[make].fit(X, y, sample_weight=np.full(len(y), 2.5))
    np.testing.assert_array_equal(weighted.predict_proba(X), plain.predict_proba(X))
    varied = _estimators(_template())[make].fit(X, y, sample_weight=np.linspace(0.1, 3, len(y)))
    assert not np.allclose(varied.predict_proba(X), plain.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("change", ["repeat", "remove"])
@pytest.mark.parametrize("make", [0, 1], ids=["deep-ensemble", "espro"])
def test_full_batch_weights_equal_repeated_or_removed_rows(imbalanced, make, change):
    """With one minibatch holding every row, a weight of 2 is a repeated row
    and a weight of 0 a removed one (up to rounding): the loss is the same
    function. (With several minibatches it is not, see test_sklearn_compat.)"""
    X, y = imbalanced
    template = _template(batch_size=10_000, optimizer=torch.optim.SGD, lr=0.2, max_epochs=6)
    weight = np.ones(len(y))
    rows = np.arange(0, len(y), 5)
    if change == "repeat":
        weight[rows] = 2.0
        X_equal, y_equal = np.concatenate([X, X[rows]]), np.concatenate([y, y[rows]])
    else:
        weight[rows] = 0.0
        X_equal, y_equal = np.delete(X, rows, 0), np.delete(y, rows)
    weighted = _estimators(template)[make].fit(X, y, sample_weight=weight)
    equal = _estimators(template)[make].fit(X_equal, y_equal)
    np.testing.assert_allclose(weighted.predict_proba(X), equal.predict_proba(X), atol=2e-5)


def test_balanced_class_weight_equals_balanced_sample_weights(imbalanced):
    """class_weight goes to the criterion, sample_weight with the rows; both
    give the same weighted mean per minibatch, members and vertices alike."""
    X, y = imbalanced
    by_class = _estimators(_template())[1].set_params(class_weight="balanced").fit(X, y)
    by_row = _estimators(_template())[1].fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(by_class.predict_proba(X), by_row.predict_proba(X), atol=2e-4)


def test_weighting_the_rare_class_raises_its_probability(imbalanced):
    X, y = imbalanced
    rare = y == 2
    plain = _estimators(_template())[1].fit(X, y)
    balanced = _estimators(_template())[1].set_params(class_weight="balanced").fit(X, y)
    as_dict = _estimators(_template())[1].set_params(class_weight={2: 8.0}).fit(X, y)
    p_plain = plain.predict_proba(X)[rare, 2].mean()
    assert balanced.predict_proba(X)[rare, 2].mean() > p_plain + 0.05
    assert as_dict.predict_proba(X)[rare, 2].mean() > p_plain + 0.05
    assert balanced.estimator_.criterion__weight.tolist() == pytest.approx(
        (len(y) / (3 * np.bincount(y))).tolist(), rel=1e-6
    )


# ------------------------------------------------------------- bad inputs
def test_bad_weights_are_refused_before_training(imbalanced):
    X, y = imbalanced
    model = _estimators(_template())[1]
    with pytest.raises(ValueError, match="Negative values in data passed to .sample_weight"):
        model.fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), expected \(240,\)"):
        model.fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="class_weight has keys \\[7\\] that are not classes"):
        clone(model).set_params(class_weight={7: 2.0}).fit(X, y)
    with pytest.raises(ValueError, match="got class_weight and a template with criterion__weight"):
        weighted = _template(criterion__weight=torch.ones(3))
        ESPROClassifier(weighted, class_weight="balanced").fit(X, y)
    assert not hasattr(model, "networks_")


class _NoWeightLoss(torch.nn.Module):
    """A criterion that takes no per-class weights and has no reduction."""

    def forward(self, y_pred, y_true):
        return torch.nn.functional.cross_entropy(y_pred, y_true)


def test_criteria_that_cannot_weight_say_so_before_training(imbalanced):
    X, y = imbalanced
    template = _template(criterion=_NoWeightLoss)
    with pytest.raises(ValueError, match="class_weight needs a criterion that takes per-class weights"):
        DeepEnsembleClassifier(template, n_members=1, class_weight="balanced").fit(X, y)
    with pytest.raises(ValueError, match="sample_weight needs a criterion with reduction='mean' or 'sum'"):
        DeepEnsembleClassifier(template, n_members=1).fit(X, y, sample_weight=np.linspace(1, 2, len(y)))


# --------------------------------------------------------- routing, params
def test_sample_weight_routes_through_pipelines_grid_search_and_cross_validate(imbalanced):
    X, y = imbalanced
    w = compute_sample_weight("balanced", y)
    direct = _estimators(_template())[1].fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    piped = make_pipeline(StandardScaler(), _estimators(_template())[1])
    piped.fit(X, y, esproclassifier__sample_weight=w)
    np.testing.assert_array_equal(
        piped.predict_proba(X), direct.predict_proba(StandardScaler().fit_transform(X))
    )
    with sklearn.config_context(enable_metadata_routing=True):
        scaler = StandardScaler().set_fit_request(sample_weight=False)  # it takes weights too
        routed = make_pipeline(
            scaler,
            _estimators(_template())[1]
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=True),
        )
        routed.fit(X, y, sample_weight=w)
        np.testing.assert_array_equal(routed.predict_proba(X), piped.predict_proba(X))
        grid = GridSearchCV(routed, {"esproclassifier__vertex_epochs": [1, 2]}, cv=2).fit(
            X, y, sample_weight=w
        )
        assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
        scores = cross_validate(routed, X, y, cv=2, params={"sample_weight": w})["test_score"]
        assert scores.shape == (2,) and np.all(scores > 0.5)
        with pytest.raises(sklearn.exceptions.UnsetMetadataPassedError, match="ESPROClassifier.fit"):
            make_pipeline(clone(scaler), _estimators(_template())[1]).fit(X, y, sample_weight=w)


def test_estimator_is_the_validated_template_and_the_users_is_untouched(imbalanced):
    X, y = imbalanced
    template = _template()
    before = template.get_params()
    model = ESPROClassifier(template, n_members=1, n_vertices=1, vertex_epochs=1, class_weight="balanced")
    model.fit(X, y)
    assert model.estimator_ is not template and not hasattr(model.estimator_, "module_")
    assert model.estimator_.module__input_dim == 6 and model.estimator_.module__n_classes == 3
    assert model.estimator_.criterion__weight.shape == (3,)
    assert all(net.module__input_dim == 6 for net in model.estimators_)
    assert template.get_params().keys() == before.keys() and "module__input_dim" not in template.get_params()


def test_settings_of_the_default_template_can_be_set_and_searched(imbalanced):
    X, y = imbalanced
    model = ESPROClassifier().set_params(estimator__lr=1e-2, estimator__max_epochs=2)
    assert isinstance(model.estimator, NeuralNetClassifier) and model.estimator.lr == 1e-2
    assert model.estimator.module is MLP and "module__input_dim" not in model.estimator.get_params()
    grid = GridSearchCV(
        DeepEnsembleClassifier(n_members=1, random_state=0),
        {"estimator__max_epochs": [1, 2], "estimator__module__hidden_units": [(8,)]},
        cv=2,
    ).fit(X, y)
    assert grid.best_estimator_.estimators_[0].max_epochs == grid.best_params_["estimator__max_epochs"]
    assert SPROConnector().set_params(estimator__lr=0.5).estimator.lr == 0.5


# ------------------------------------------------------ templates at fit
def test_a_template_that_does_not_fit_the_data_names_the_setting_before_training(imbalanced):
    X, y = imbalanced
    wrong_input = _template(module__input_dim=13)
    with pytest.raises(ValueError, match=r"estimator__module__input_dim=6"):
        ESPROClassifier(wrong_input, n_members=1).fit(X, y)
    wrong_output = _template(module__n_classes=5)
    with pytest.raises(ValueError, match=r"y has 3 classes .* estimator__module__n_classes"):
        DeepEnsembleClassifier(wrong_output, n_members=1).fit(X, y)
