"""Selective classification, OOD detection beyond AUROC and disagreement, against numpy references."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from skspro.metrics import (
    augrc,
    aurc,
    coverage_at_risk,
    disagreement,
    fpr_at_tpr,
    mutual_information,
    ood_aupr,
    ood_detection_report,
    ood_score,
    pairwise_disagreement,
    predictive_entropy,
    risk_coverage_curve,
)


def random_problem(seed, n=200, n_classes=4):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(n_classes, 0.5), size=n)
    # labels that agree with the prediction more often where it is confident
    y = np.where(rng.random(n) < proba.max(axis=1), proba.argmax(axis=1), rng.integers(0, n_classes, n))
    return y, proba


def reference_selective(y, proba):
    """(coverage, risk, generalised risk) for k = 1..n most confident rows, by a loop (no ties)."""
    confidence = proba.max(axis=1)
    order = np.argsort(-confidence)
    wrong = proba.argmax(axis=1) != y
    n = len(y)
    coverage, risk, generalized = [], [], []
    for k in range(1, n + 1):
        accepted = order[:k]
        coverage.append(k / n)
        risk.append(wrong[accepted].sum() / k)
        generalized.append(wrong[accepted].sum() / n)
    return np.array(coverage), np.array(risk), np.array(generalized)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_risk_coverage_against_a_loop(seed):
    y, proba = random_problem(seed)
    curve = risk_coverage_curve(y, proba)
    coverage, risk, generalized = reference_selective(y, proba)
    np.testing.assert_allclose(curve.coverage, coverage)
    np.testing.assert_allclose(curve.risk, risk)
    np.testing.assert_allclose(curve.generalized_risk, generalized)
    assert aurc(y, proba) == pytest.approx(risk.mean(), abs=1e-12)
    assert augrc(y, proba) == pytest.approx(generalized.mean(), abs=1e-12)
    for target in (0.05, 0.2, 0.5):
        expected = coverage[risk <= target].max() if (risk <= target).any() else 0.0
        assert coverage_at_risk(y, proba, target) == pytest.approx(expected)


def test_ties_are_accepted_together():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.8, 0.2], [0.8, 0.2], [0.8, 0.2], [0.4, 0.6]])
    curve = risk_coverage_curve(y, proba)
    np.testing.assert_allclose(curve.coverage, [0.75, 1.0])
    np.testing.assert_allclose(curve.risk, [1 / 3, 1 / 4])
    np.testing.assert_allclose(curve.thresholds, [0.8, 0.6])


def test_a_better_ranking_has_a_lower_aurc():
    y, proba = random_problem(3)
    wrong = (proba.argmax(axis=1) != y).astype(float)
    oracle = aurc(y, proba, confidence=-wrong + 1e-6 * proba.max(axis=1))
    anti = aurc(y, proba, confidence=wrong)
    assert oracle < aurc(y, proba) < anti
    # the oracle's AURC: mean risk when all errors come last
    e, n = int(wrong.sum()), len(y)
    expected = np.mean([max(0, k - (n - e)) / k for k in range(1, n + 1)])
    assert oracle == pytest.approx(expected)


def test_selective_errors():
    y, proba = random_problem(0, n=10)
    with pytest.raises(ValueError, match="one score per row"):
        aurc(y, proba, confidence=np.ones(3))
    with pytest.raises(ValueError, match=r"risk must be in \[0, 1\]"):
        coverage_at_risk(y, proba, 1.5)


def reference_fpr(inside, outside, tpr):
    for threshold in np.sort(inside):  # lowest threshold accepting at least tpr of the inside rows
        if np.mean(inside <= threshold) >= tpr:
            return np.mean(outside <= threshold)
    raise AssertionError


@pytest.mark.parametrize("seed", [0, 1])
def test_ood_metrics_against_references(seed):
    rng = np.random.default_rng(seed)
    inside, outside = rng.normal(0, 1, 300), rng.normal(1.5, 1, 200)
    for tpr in (0.5, 0.9, 0.95, 1.0):
        assert fpr_at_tpr(inside, outside, tpr) == pytest.approx(reference_fpr(inside, outside, tpr))
    # AUPR: average precision = mean over positives of the precision at their rank
    for positive, pos, neg, sign in (("out", outside, inside, 1), ("in", inside, outside, -1)):
        scores = np.r_[pos, neg] * sign
        is_pos = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        ranked = is_pos[np.argsort(-scores)]
        precision = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
        expected = precision[ranked == 1].mean()
        assert ood_aupr(inside, outside, positive=positive) == pytest.approx(expected, abs=1e-12)
        assert expected == pytest.approx(average_precision_score(is_pos, scores))


def test_ood_scores_and_report():
    rng = np.random.default_rng(0)
    sharp = rng.dirichlet([0.1] * 3, size=(5, 80))
    flat = rng.dirichlet([3.0] * 3, size=(5, 60))
    np.testing.assert_allclose(ood_score(sharp), 1 - sharp.mean(axis=0).max(axis=1))
    np.testing.assert_allclose(ood_score(sharp, "entropy"), predictive_entropy(sharp))
    np.testing.assert_allclose(ood_score(sharp, "mutual_information"), mutual_information(sharp))
    report = ood_detection_report(sharp, flat, scores=("max_probability", "entropy"), tpr=0.9)
    assert list(report.columns) == ["auroc", "aupr_in", "aupr_out", "fpr_at_90tpr"]
    assert report.loc["entropy", "fpr_at_90tpr"] == pytest.approx(
        fpr_at_tpr(predictive_entropy(sharp), predictive_entropy(flat), 0.9)
    )
    assert (report["auroc"] > 0.5).all()
    with pytest.raises(ValueError, match="score must be one of"):
        ood_score(sharp, "energy")


def test_disagreement_against_a_loop():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1.0] * 4, size=(5, 100))
    predicted = proba.argmax(axis=2)
    expected = np.array([[np.mean(predicted[i] != predicted[j]) for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(pairwise_disagreement(proba), expected)
    assert disagreement(proba) == pytest.approx(expected[np.triu_indices(5, 1)].mean())
    assert disagreement(proba[:1]) == 0.0
