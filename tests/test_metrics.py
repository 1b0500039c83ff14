"""Calibration metrics against a plain numpy reference, hand-computed cases and bad inputs."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, log_loss

from skspro.metrics import (
    average_calibration_error,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
)

BINNED = {
    "ece": expected_calibration_error,
    "mce": maximum_calibration_error,
    "ace": average_calibration_error,
}
ALL_METRICS = [*BINNED.values(), negative_log_likelihood, brier_score]


# ----------------------------------------------------------------------------- reference
def reference_binned(y_index, proba, n_bins, strategy):
    """Top-label ECE / MCE / ACE by explicit loops over samples and bins.

    Bins are [lo, hi) with the last one closed; quantile edges are the
    quantiles of the confidences with the end points set to 0 and 1.
    """
    proba = np.asarray(proba, dtype=np.float64)
    confidence = np.array([max(row) for row in proba])
    correct = np.array([float(np.argmax(row) == label) for row, label in zip(proba, y_index)])
    fractions = np.array([k / n_bins for k in range(n_bins + 1)])  # each edge the double nearest k/n
    if strategy == "uniform":
        edges = fractions
    else:
        edges = np.quantile(confidence, fractions)
        edges[0], edges[-1] = 0.0, 1.0
    gaps, weights = [], []
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        last = b == n_bins - 1
        members = [i for i, c in enumerate(confidence) if lo <= c and (c < hi or (last and c <= hi))]
        if not members:
            continue
        gaps.append(abs(np.mean(correct[members]) - np.mean(confidence[members])))
        weights.append(len(members) / len(confidence))
    gaps, weights = np.array(gaps), np.array(weights)
    return {"ece": float(np.sum(gaps * weights)), "mce": float(gaps.max()), "ace": float(gaps.mean())}


def reference_nll(y_index, proba):
    return -np.mean([np.log(max(row[label], np.finfo(np.float64).eps)) for row, label in zip(proba, y_index)])


def reference_brier(y_index, proba):
    total = 0.0
    for row, label in zip(proba, y_index):
        total += sum((p - (k == label)) ** 2 for k, p in enumerate(row))
    return total / len(proba)


def random_case(seed, n_classes, n_samples, present=None, concentration=None):
    """Random probabilities and labels; ``present`` restricts which classes occur in y."""
    rng = np.random.default_rng(seed)
    alpha = concentration if concentration is not None else rng.uniform(0.1, 3.0)
    proba = rng.dirichlet(np.full(n_classes, alpha), size=n_samples)
    classes = np.arange(n_classes) if present is None else np.asarray(present)
    y = rng.choice(classes, size=n_samples)
    return y, proba


CASES = [
    # (seed, n_classes, n_samples, classes present in y)
    *[
        (seed, n_classes, n_samples, None)
        for seed, (n_classes, n_samples) in enumerate(
            [(2, 50), (2, 400), (3, 7), (3, 300), (5, 200), (10, 1000), (10, 31), (4, 2)]
        )
    ],
    (100, 3, 200, [0, 2]),  # multiclass batch in which only two classes occur (netcal's binary trap)
    (101, 5, 150, [1, 3]),
    (102, 10, 300, [9, 0]),
    (103, 4, 100, [2]),  # a single class occurs
]


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [1, 5, 15])
@pytest.mark.parametrize(("seed", "n_classes", "n_samples", "present"), CASES)
def test_binned_metrics_match_reference(seed, n_classes, n_samples, present, n_bins, strategy):
    y, proba = random_case(seed, n_classes, n_samples, present)
    expected = reference_binned(y, proba, n_bins, strategy)
    labels = np.arange(n_classes)
    for name, metric in BINNED.items():
        got = metric(y, proba, n_bins=n_bins, strategy=strategy, labels=labels)
        assert got == pytest.approx(expected[name], abs=1e-12), name


@pytest.mark.parametrize(("seed", "n_classes", "n_samples", "present"), CASES)
def test_nll_and_brier_match_reference(seed, n_classes, n_samples, present):
    y, proba = random_case(seed, n_classes, n_samples, present)
    labels = np.arange(n_classes)
    nll, brier = negative_log_likelihood(y, proba, labels=labels), brier_score(y, proba, labels=labels)
    assert nll == pytest.approx(reference_nll(y, proba), rel=1e-12)
    assert brier == pytest.approx(reference_brier(y, proba), rel=1e-12)


def test_two_present_classes_are_not_read_as_a_binary_problem():
    # 3 columns, labels 0 and 2 only: the top label is column 0, 1 or 2, and correctness is
    # "argmax == label", not "probability of column 1".
    y = np.array([0, 2, 2, 0])
    proba = np.array([[0.65, 0.25, 0.1], [0.1, 0.15, 0.75], [0.2, 0.55, 0.25], [0.25, 0.55, 0.2]])
    # confidences .65 (right), .75 (right), .55 and .55 (wrong), in three of ten bins
    ece = expected_calibration_error(y, proba, n_bins=10, labels=[0, 1, 2])
    assert ece == pytest.approx((0.35 + 0.25 + 2 * 0.55) / 4)
    assert ece == pytest.approx(reference_binned(y, proba, 10, "uniform")["ece"])


def test_binary_problem_uses_the_top_label_and_accepts_the_positive_column():
    y, proba = random_case(7, 2, 300)
    expected = reference_binned(y, proba, 15, "uniform")["ece"]
    assert expected_calibration_error(y, proba) == pytest.approx(expected, abs=1e-12)
    # sklearn's scorers pass the positive-class column only: same result
    assert expected_calibration_error(y, proba[:, 1]) == pytest.approx(expected, abs=1e-12)
    assert negative_log_likelihood(y, proba[:, 1]) == pytest.approx(negative_log_likelihood(y, proba))


# ------------------------------------------------------------------------ hand-computed
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_constant_overconfident_predictor(strategy):
    # always 90 % sure of class 0, right 60 % of the time: every bin metric is |0.6 - 0.9|
    y = np.array([0] * 60 + [1] * 25 + [2] * 15)
    proba = np.tile([0.9, 0.05, 0.05], (100, 1))
    for metric in BINNED.values():
        assert metric(y, proba, strategy=strategy) == pytest.approx(0.3)
    assert negative_log_likelihood(y, proba) == pytest.approx(-(0.6 * np.log(0.9) + 0.4 * np.log(0.05)))
    assert brier_score(y, proba) == pytest.approx(0.6 * (0.01 + 2 * 0.0025) + 0.4 * (0.81 + 0.9025 + 0.0025))


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_exactly_calibrated_predictor_has_zero_ece(strategy):
    # within each confidence level, the share of correct predictions equals the confidence
    blocks = []
    for confidence, n_right, n_wrong in [(0.5, 5, 5), (0.7, 7, 3), (0.9, 9, 1), (1.0, 10, 0)]:
        row = [confidence, 1 - confidence]
        blocks += [(row, 0)] * n_right + [(row, 1)] * n_wrong
    proba = np.array([row for row, _ in blocks])
    y = np.array([label for _, label in blocks])
    for metric in BINNED.values():
        assert metric(y, proba, n_bins=10, strategy=strategy) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibrated_random_predictor_has_small_ece(strategy):
    # labels drawn from the predicted distribution: calibrated up to sampling noise and binning
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(4, 0.5), size=20_000)
    y = (rng.uniform(size=(len(proba), 1)) > proba.cumsum(axis=1)).sum(axis=1)
    assert expected_calibration_error(y, proba, strategy=strategy) < 0.015
    sharpened = proba**3 / (proba**3).sum(axis=1, keepdims=True)  # over-confident version
    assert expected_calibration_error(y, sharpened, strategy=strategy) > 0.05


def test_quantile_bins_hold_equal_mass_and_survive_ties():
    rng = np.random.default_rng(1)
    y, proba = random_case(1, 3, 300, concentration=0.05)  # most rows saturate near one class
    proba[:120] = np.eye(3)[rng.integers(0, 3, 120)]  # many confidences tied at exactly 1.0
    for name, metric in BINNED.items():
        got = metric(y, proba, n_bins=10, strategy="quantile")
        assert got == pytest.approx(reference_binned(y, proba, 10, "quantile")[name], abs=1e-12)


def test_nll_equals_sklearn_log_loss_and_brier_its_multiclass_convention():
    y, proba = random_case(3, 4, 200)
    assert negative_log_likelihood(y, proba) == pytest.approx(log_loss(y, proba), rel=1e-12)
    assert brier_score(y, proba) == pytest.approx(brier_score_loss(y, proba), rel=1e-12)
    y2, proba2 = random_case(4, 2, 200)
    # for two classes sklearn scales by half (the positive column alone)
    assert brier_score(y2, proba2) == pytest.approx(2 * brier_score_loss(y2, proba2[:, 1]), rel=1e-12)


def test_nll_clips_zero_probabilities_like_sklearn():
    y = np.array([0, 1])
    proba = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    assert negative_log_likelihood(y, proba) == pytest.approx(log_loss(y, proba))
    assert np.isfinite(negative_log_likelihood(y, proba.astype(np.float64)))


def test_any_label_type_and_column_order():
    y, proba = random_case(5, 3, 100)
    names = np.array(["cat", "dog", "emu"])
    for metric in ALL_METRICS:
        expected = metric(y, proba)
        assert metric(names[y], proba) == pytest.approx(expected)
        # labels in a different column order: permute the columns the same way
        order = [2, 0, 1]
        assert metric(names[y], proba[:, order], labels=names[order]) == pytest.approx(expected)


def test_labels_allow_classes_missing_from_y():
    y, proba = random_case(6, 4, 50, present=[0, 3])
    for metric in ALL_METRICS:
        with pytest.raises(ValueError, match="2 distinct labels .* 4 columns.*labels="):
            metric(y, proba)
        assert np.isfinite(metric(y, proba, labels=[0, 1, 2, 3]))


def test_float32_network_outputs_pass():
    rng = np.random.default_rng(8)
    for n_classes in (2, 10, 100, 1000):
        logits = rng.normal(scale=5.0, size=(64, n_classes)).astype(np.float32)
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        assert proba.dtype == np.float32
        y = rng.integers(0, n_classes, size=64)
        for metric in ALL_METRICS:
            assert np.isfinite(metric(y, proba, labels=np.arange(n_classes)))


def test_inputs_are_not_modified():
    y, proba = random_case(9, 3, 40)
    proba32 = proba.astype(np.float32)
    proba32 /= proba32.sum(axis=1, keepdims=True)
    for probabilities in (proba, proba32, proba[:, 1] / proba[:, :2].sum(axis=1)):
        y_copy, proba_copy = y.copy(), probabilities.copy()
        probabilities.flags.writeable = False  # any write would raise
        y_binary = (y > 0).astype(int) if probabilities.ndim == 1 else y
        for metric in ALL_METRICS:
            metric(y_binary, probabilities)
        np.testing.assert_array_equal(probabilities, proba_copy)
        np.testing.assert_array_equal(y, y_copy)


# ------------------------------------------------------------------------------ errors
GOOD_Y = np.array([0, 1, 2, 1])
GOOD_PROBA = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])


def _with(index, value):
    proba = GOOD_PROBA.copy()
    proba[index] = value
    return proba


BAD_INPUTS = [
    (GOOD_Y, _with((0, 0), 0.8), {}, r"must sum to 1 .* sums to 1\.1.*normalise"),
    (GOOD_Y, _with((1, 1), np.nan), {}, r"NaN or infinite .*index \(1, 1\)"),
    (GOOD_Y, np.array([[1.2, -0.2, 0.0]] * 4), {}, r"negative values \(minimum -0\.2"),
    (GOOD_Y[:3], GOOD_PROBA, {}, "y_true has 3 labels but y_proba has 4 rows"),
    (np.array([0, 1, np.nan, 1]), GOOD_PROBA, {}, r"missing labels \(NaN/None\)"),
    (GOOD_Y, GOOD_PROBA, {"labels": [0, 1]}, "labels has 2 entries but y_proba has 3 columns"),
    (GOOD_Y, GOOD_PROBA, {"labels": [0, 1, 1]}, "labels contains 1 twice"),
    (np.array([0, 1, 7, 1]), GOOD_PROBA, {"labels": [0, 1, 2]}, r"labels \[7\] that are not in labels="),
    (GOOD_Y, GOOD_PROBA[np.newaxis], {}, r"must be 2-D.*average.*over axis 0"),
    (np.array([0, 1]), np.array([0.2, 1.3]), {}, r"positive class and must lie in \[0, 1\]"),
    (GOOD_Y, np.array([["a", "b", "c"]] * 4), {}, "must hold numbers"),
    (GOOD_Y, np.empty((0, 3)), {}, "no rows"),
    (GOOD_Y.reshape(2, 2), GOOD_PROBA, {}, "y_true must be a 1-D array"),
]


@pytest.mark.parametrize("metric", ALL_METRICS)
@pytest.mark.parametrize(("y", "proba", "kwargs", "message"), BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(metric, y, proba, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metric(y, proba, **kwargs)


@pytest.mark.parametrize("metric", BINNED.values())
def test_bad_binning_raises(metric):
    with pytest.raises(ValueError, match="n_bins must be a positive integer; got 0"):
        metric(GOOD_Y, GOOD_PROBA, n_bins=0)
    with pytest.raises(ValueError, match="n_bins must be a positive integer; got 2.5"):
        metric(GOOD_Y, GOOD_PROBA, n_bins=2.5)
    with pytest.raises(ValueError, match="strategy must be 'uniform'.*got 'equal'"):
        metric(GOOD_Y, GOOD_PROBA, strategy="equal")


def test_sum_tolerance_scales_with_precision():
    proba64 = _with((0, 0), 0.7 + 1e-5)  # row sums to 1 + 1e-5
    with pytest.raises(ValueError, match="within 1.0e-06"):
        expected_calibration_error(GOOD_Y, proba64)
    # float32 rows are accepted within sqrt(float32 eps) ~ 3.5e-4
    assert np.isfinite(expected_calibration_error(GOOD_Y, proba64.astype(np.float32)))
    with pytest.raises(ValueError, match="within 3.5e-04"):
        expected_calibration_error(GOOD_Y, _with((0, 0), 0.701).astype(np.float32))


# ------------------------------------------------------------------- temperature scaling
def test_temperature_scaling_lowers_nll_of_an_overconfident_network():
    """sklearn's CalibratedClassifierCV(FrozenEstimator(model), method="temperature") on our estimators."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_digits
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import train_test_split

    from skspro import DeepEnsembleClassifier, default_estimator

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    # a small training split trained for many epochs: the network over-fits and becomes over-confident
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=150, stratify=y, random_state=0)
    X_val, X_test, y_val, y_test = train_test_split(
        X_rest, y_rest, train_size=0.5, stratify=y_rest, random_state=0
    )
    network = DeepEnsembleClassifier(
        default_estimator().set_params(max_epochs=300), n_members=1, random_state=0
    ).fit(X_train, y_train)
    proba = network.predict_proba(X_test)
    accuracy = np.mean(network.classes_[proba.argmax(axis=1)] == y_test)
    assert proba.max(axis=1).mean() > accuracy + 0.02, "the network should be over-confident"

    scaled = CalibratedClassifierCV(FrozenEstimator(network), method="temperature").fit(X_val, y_val)
    scaled_proba = scaled.predict_proba(X_test)
    nll_before = negative_log_likelihood(y_test, proba)
    nll_after = negative_log_likelihood(y_test, scaled_proba)
    print(f"temperature scaling: test NLL {nll_before:.4f} -> {nll_after:.4f}")
    assert nll_after < 0.9 * nll_before
    assert expected_calibration_error(y_test, scaled_proba) < expected_calibration_error(y_test, proba)
    # a temperature keeps the predicted class
    np.testing.assert_array_equal(scaled_proba.argmax(axis=1), proba.argmax(axis=1))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_classes=st.integers(2, 6),
    n_samples=st.integers(1, 80),
    n_bins=st.integers(1, 20),
    strategy=st.sampled_from(["uniform", "quantile"]),
)
def test_binned_metrics_are_ordered_and_bounded(seed, n_classes, n_samples, n_bins, strategy):
    y, proba = random_case(seed, n_classes, n_samples)
    labels = np.arange(n_classes)
    ece, mce, ace = (m(y, proba, n_bins=n_bins, strategy=strategy, labels=labels) for m in BINNED.values())
    assert 0.0 <= ece <= mce + 1e-12 <= 1.0 + 1e-12
    assert ace <= mce + 1e-12
    assert ece == pytest.approx(reference_binned(y, proba, n_bins, strategy)["ece"], abs=1e-12)


# ----------------------------------------------------------------------------- confidences on bin edges
def exact_binned(confidence_fractions, correct, n_bins):
    """ECE / MCE / ACE in exact rational arithmetic, for confidences given as fractions.

    A confidence c is in bin floor(c * n_bins) (bins closed on the left), the
    last bin also holding c = 1.
    """
    bins = {}
    for c, right in zip(confidence_fractions, correct):
        b = min(int(math.floor(c * n_bins)), n_bins - 1)
        bins.setdefault(b, []).append((c, Fraction(int(right))))
    gaps = {
        b: abs(sum(r for _, r in rows) / len(rows) - sum(c for c, _ in rows) / len(rows))
        for b, rows in bins.items()
    }
    n = len(confidence_fractions)
    return {
        "ece": float(sum(len(bins[b]) * gap for b, gap in gaps.items()) / n),
        "mce": float(max(gaps.values())),
        "ace": float(sum(gaps.values()) / len(gaps)),
    }


def two_column_proba(confidence):
    """Rows [c, 1 - c]: the top label is column 0 with confidence exactly c (for c >= 0.5)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    return np.column_stack([confidence, 1.0 - confidence])


def test_confidences_on_an_edge_open_their_bin():
    # confidence 0.5 right 60 % of the time plus 0.6 right 50 %: bins [0.5, 0.6) and [0.6, 0.7), gap 0.1 each
    confidence = [0.5] * 10 + [0.6] * 10
    y = [0] * 6 + [1] * 4 + [0] * 5 + [1] * 5
    for name, metric in BINNED.items():
        assert metric(y, two_column_proba(confidence), n_bins=10) == pytest.approx(0.1, abs=1e-12), name


@pytest.mark.parametrize("n_bins", range(1, 41))
def test_every_edge_k_over_n_bins_opens_bin_k(n_bins):
    from skspro.metrics._calibration import _bin_edges, _bin_index

    on_edges = np.array([k / n_bins for k in range(n_bins + 1)])
    assert _bin_index(on_edges, _bin_edges(on_edges, n_bins, "uniform")).tolist() == [
        min(k, n_bins - 1) for k in range(n_bins + 1)
    ]
    # through the public metrics: one group of samples on every edge >= 1/2, right and wrong in turn,
    # so that a group sent one bin low would merge with its neighbour and change all three metrics
    ks = [k for k in range(n_bins + 1) if 2 * k >= n_bins]
    confidence = np.repeat([k / n_bins for k in ks], 3)
    correct = np.repeat([k % 2 == 0 for k in ks], 3)
    expected = exact_binned(np.repeat([Fraction(k, n_bins) for k in ks], 3), correct, n_bins)
    y = np.where(correct, 0, 1)
    for name, metric in BINNED.items():
        got = metric(y, two_column_proba(confidence), n_bins=n_bins, labels=[0, 1])
        assert got == pytest.approx(expected[name], abs=1e-12), name


@pytest.mark.parametrize("n_bins", [10, 15, 20])
def test_ten_tree_forest_probabilities_on_edges(n_bins):
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, y_train)
    proba = forest.predict_proba(X_test)
    tenths = np.rint(proba.max(axis=1) * 10).astype(int)
    np.testing.assert_array_equal(proba.max(axis=1), tenths / 10)  # multiples of 0.1, as the trees vote
    on_edge = (tenths * n_bins) % 10 == 0
    assert on_edge.sum() > len(y_test) / 4  # the case is about edges: many confidences lie on one
    correct = forest.classes_[proba.argmax(axis=1)] == y_test
    expected = exact_binned([Fraction(int(t), 10) for t in tenths], correct, n_bins)
    for name, metric in BINNED.items():
        assert metric(y_test, proba, n_bins=n_bins) == pytest.approx(expected[name], abs=1e-12), name


def test_confidence_one_shares_the_last_bin_and_zero_opens_the_first():
    from skspro.metrics._calibration import _bin_edges, _bin_index

    # 1.0 (right half the time) and 0.95 (always right) share the last of 10 bins, [0.9, 1]:
    # accuracy 0.75, mean confidence 0.975. torchmetrics would give 1.0 a bin of its own (ECE 0.25).
    confidence = [1.0] * 4 + [0.95] * 4
    y = [0, 0, 1, 1, 0, 0, 0, 0]
    for name, metric in BINNED.items():
        assert metric(y, two_column_proba(confidence), n_bins=10) == pytest.approx(0.225, abs=1e-12), name
    for n_bins in (1, 7, 15):
        edges = _bin_edges(np.array([0.5]), n_bins, "uniform")
        assert _bin_index(np.array([0.0, 1.0]), edges).tolist() == [0, n_bins - 1]


def test_tied_confidences_and_quantile_edges():
    # 10 samples at 0.7 and 10 at 1.0, 4 equal-mass bins: the quantile edges are 0.7 (twice) and 1.0 (three
    # times); each group of ties is one bin, whatever the number of bins asked for.
    confidence = [0.7] * 10 + [1.0] * 10
    correct = [True] * 5 + [False] * 5 + [True] * 10
    y = np.where(correct, 0, 1)
    expected = exact_binned([Fraction(7, 10)] * 10 + [Fraction(1)] * 10, correct, 10)  # the same two bins
    for n_bins in (2, 4, 9):
        for name, metric in BINNED.items():
            got = metric(y, two_column_proba(confidence), n_bins=n_bins, strategy="quantile")
            assert got == pytest.approx(expected[name], abs=1e-12), (name, n_bins)
