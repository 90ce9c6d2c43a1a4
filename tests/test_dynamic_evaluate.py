"""Budgeted-batch (dynamic) evaluation and anytime accuracy on hand-checkable examples."""

import math

import numpy as np
import pytest

from tinyexit.evaluate.budgeted import (
    anytime_accuracy,
    assign_exits,
    default_qs,
    dynamic_evaluate,
    exit_shares,
    find_thresholds,
)


def binary_probs(table):
    """``table[k][i] = (p_class0, p_class1)`` -> array (K, N, 2)."""
    return np.array(table, dtype=np.float64)


def two_class(conf, pred):
    """Probabilities of a 2-class output with max probability ``conf`` on class ``pred``."""
    return (conf, 1 - conf) if pred == 0 else (1 - conf, conf)


# Held-out set: K = 3 exits, N = 8 samples s0..s7. Only the confidence (max prob) matters here.
VAL_CONF = [
    [0.95, 0.90, 0.90, 0.60, 0.55, 0.70, 0.80, 0.50],  # exit 1
    [0.99, 0.60, 0.97, 0.85, 0.65, 0.75, 0.85, 0.52],  # exit 2
    [0.90, 0.80, 0.70, 0.60, 0.95, 0.65, 0.75, 0.85],  # exit 3 (never used for thresholds)
]
VAL = binary_probs([[two_class(c, 0) for c in row] for row in VAL_CONF])
VAL_TARGETS = np.zeros(8, dtype=np.int64)

# Test set: N = 6 samples t0..t5, (confidence, predicted class) at exits 1, 2, 3, and the target.
TEST_ROWS = [
    # exit 1      exit 2       exit 3       target
    ((0.92, 0), (0.95, 0), (0.97, 0), 0),  # t0
    ((0.90, 1), (0.70, 1), (0.80, 0), 0),  # t1
    ((0.70, 1), (0.88, 1), (0.95, 1), 1),  # t2
    ((0.60, 0), (0.80, 1), (0.55, 0), 0),  # t3
    ((0.85, 1), (0.85, 0), (0.90, 1), 1),  # t4
    ((0.51, 1), (0.60, 1), (0.90, 1), 1),  # t5
]
TEST = binary_probs([[two_class(*row[k]) for row in TEST_ROWS] for k in range(3)])
TEST_TARGETS = np.array([row[3] for row in TEST_ROWS], dtype=np.int64)
MUL_ADDS = [10.0, 20.0, 40.0]


def test_exit_shares_sum_to_one_and_follow_q_power_k():
    for q in default_qs():
        shares = exit_shares(q, 5)
        assert shares.shape == (5,)
        assert math.isclose(shares.sum(), 1.0, rel_tol=0, abs_tol=1e-12)
        np.testing.assert_allclose(shares[1:] / shares[:-1], q, rtol=1e-12)
    np.testing.assert_allclose(exit_shares(1.0, 4), [0.25] * 4)
    np.testing.assert_allclose(exit_shares(0.5, 3), [4 / 7, 2 / 7, 1 / 7])
    with pytest.raises(ValueError, match="positive"):
        exit_shares(0.0, 3)


def test_default_qs_are_the_39_msdnet_points():
    qs = default_qs()
    assert len(qs) == 39 and qs[0] == 0.05 and qs[-1] == 1.95
    assert qs[19] == 1.0


def test_thresholds_by_hand_q1():
    # q = 1: shares 1/3 each, n_1 = n_2 = floor(8 / 3) = 2.
    # Exit 1 by descending confidence: s0 .95, s1 .90, s2 .90, s6 .80, ... The 2nd is 0.90, so
    # T_1 = 0.90 and every sample with confidence >= 0.90 is taken: s0, s1, s2 (3 > n_1, a tie).
    # Exit 2, skipping s0, s1, s2: s3 .85, s6 .85, s5 .75, s4 .65, s7 .52. The 2nd is 0.85, so
    # T_2 = 0.85 (without the skipping it would have been s0's .99, s2's .97 -> 0.97).
    # T_3 = -inf.
    np.testing.assert_array_equal(find_thresholds(VAL, exit_shares(1.0, 3)), [0.90, 0.85, -np.inf])


def test_thresholds_by_hand_q_half():
    # q = 0.5: shares 4/7, 2/7, 1/7; n_1 = floor(32/7) = 4, n_2 = floor(16/7) = 2.
    # Exit 1: .95, .90, .90, .80 -> T_1 = 0.80, taken s0, s1, s2, s6.
    # Exit 2 among s3 .85, s4 .65, s5 .75, s7 .52: .85, .75 -> T_2 = 0.75.
    np.testing.assert_array_equal(find_thresholds(VAL, exit_shares(0.5, 3)), [0.80, 0.75, -np.inf])


def test_threshold_is_inf_when_share_rounds_to_zero():
    # q = 0.05: shares ~ (0.9501, 0.0475, 0.0024); n_1 = floor(7.6) = 7, n_2 = floor(0.38) = 0.
    # Exit 1's 7th confidence is 0.55; nobody can exit at 2 (MSDNet keeps its initial 1e8).
    np.testing.assert_array_equal(find_thresholds(VAL, exit_shares(0.05, 3)), [0.55, np.inf, -np.inf])


def test_threshold_is_inf_when_fewer_samples_remain_than_the_share():
    # Every exit-1 confidence ties at 0.9: T_1 = 0.9 takes all four samples, n_2 = 2 > 0 left.
    probs = np.full((3, 4, 2), 0.5)
    probs[0] = [0.9, 0.1]
    np.testing.assert_array_equal(find_thresholds(probs, [0.5, 0.5, 0.0]), [0.9, np.inf, -np.inf])


def test_dynamic_evaluate_by_hand():
    q1, q_half = dynamic_evaluate(VAL, VAL_TARGETS, TEST, TEST_TARGETS, MUL_ADDS, qs=[1.0, 0.5])
    # q = 1, T = (0.90, 0.85, -inf):
    #   t0 .92 >= .90 -> exit 1, pred 0 = 0 right;  t1 .90 >= .90 (tie) -> exit 1, pred 1 != 0 wrong
    #   t2 .70, .88 -> exit 2, right;  t3 .60, .80 -> exit 3, pred 0 right
    #   t4 .85 < .90, .85 >= .85 -> exit 2, pred 0 != 1 wrong;  t5 .51, .60 -> exit 3, right
    # exits (1, 1, 2, 3, 2, 3): fractions 1/3 each; accuracy 4/6; cost (10 + 20 + 40) / 3.
    assert q1["q"] == 1.0
    np.testing.assert_allclose(q1["exit_fractions"], [1 / 3, 1 / 3, 1 / 3])
    assert math.isclose(q1["accuracy"], 400 / 6)
    assert math.isclose(q1["mul_adds"], 70 / 3)
    assert q1["thresholds"] == [0.90, 0.85, -math.inf]
    # q = 0.5, T = (0.80, 0.75, -inf):
    #   t0 exit 1 right; t1 exit 1 wrong; t2 .70, .88 -> exit 2 right; t3 .60, .80 -> exit 2,
    #   pred 1 != 0 wrong; t4 .85 >= .80 -> exit 1, pred 1 right; t5 .51, .60 -> exit 3 right.
    # exits (1, 1, 2, 2, 1, 3): fractions (3, 2, 1) / 6; accuracy 4/6; cost 5 + 20/3 + 40/6.
    np.testing.assert_allclose(q_half["exit_fractions"], [3 / 6, 2 / 6, 1 / 6])
    assert math.isclose(q_half["accuracy"], 400 / 6)
    assert math.isclose(q_half["mul_adds"], 5 + 20 / 3 + 40 / 6)
    np.testing.assert_array_equal(assign_exits(TEST, q_half["thresholds"]), [0, 0, 1, 1, 0, 2])


def test_dynamic_evaluate_default_qs_and_keys():
    results = dynamic_evaluate(VAL, VAL_TARGETS, TEST, TEST_TARGETS, MUL_ADDS)
    assert [r["q"] for r in results] == default_qs().tolist()
    for r in results:
        assert set(r) == {"q", "accuracy", "mul_adds", "exit_fractions", "thresholds"}
        assert math.isclose(sum(r["exit_fractions"]), 1.0)
        assert len(r["thresholds"]) == 3 and r["thresholds"][-1] == -math.inf


def test_equal_shares_on_the_set_the_thresholds_came_from():
    # With distinct confidences and thresholds tuned on the test set itself, q = 1 sends
    # floor(N / K) samples to every exit but the last, which takes the rest.
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 1000, 10)) * np.array([1, 2, 3, 4])[:, None, None]
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    targets = rng.integers(0, 10, size=1000)
    (r,) = dynamic_evaluate(probs, targets, probs, targets, [1, 2, 3, 4], qs=[1.0])
    np.testing.assert_allclose(r["exit_fractions"], [0.25, 0.25, 0.25, 0.25])
    assert math.isclose(r["mul_adds"], 2.5)


def test_cost_grows_with_q_when_later_exits_are_better():
    # Sanity on a synthetic model whose later exits are more accurate and more confident: a larger
    # q sends more samples deeper, so the expected cost never falls and accuracy rises overall.
    rng = np.random.default_rng(1)
    n, k, c = 2000, 4, 10
    targets = rng.integers(0, c, size=2 * n)
    logits = rng.normal(size=(k, 2 * n, c))
    logits[:, np.arange(2 * n), targets] += np.array([0.5, 1.5, 2.5, 3.5])[:, None]
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    results = dynamic_evaluate(probs[:, :n], targets[:n], probs[:, n:], targets[n:], [1, 2, 3, 4])
    costs = [r["mul_adds"] for r in results]
    assert all(b >= a - 0.02 for a, b in zip(costs, costs[1:]))
    assert costs[-1] > costs[0] + 1.0
    assert results[-1]["accuracy"] > results[0]["accuracy"] + 10


def test_anytime_accuracy():
    # Predictions per exit: exit 1 (0, 1, 1, 0, 1, 1), exit 2 (0, 1, 1, 1, 0, 1), exit 3 (0, 0, 1, 0, 1, 1)
    # against targets (0, 0, 1, 0, 1, 1): 5/6, 3/6, 6/6 right.
    np.testing.assert_allclose(anytime_accuracy(TEST, TEST_TARGETS), [500 / 6, 300 / 6, 100.0])
    logits = np.log(TEST) + 3.0
    np.testing.assert_allclose(anytime_accuracy(logits, TEST_TARGETS), [500 / 6, 300 / 6, 100.0])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(test_probs=TEST[:2]), "same number of exits"),
        (
            dict(test_probs=np.concatenate([TEST, np.zeros((3, 6, 1))], axis=2)),
            "same number of exits and classes",
        ),
        (dict(test_targets=TEST_TARGETS[:5]), r"test_targets must have shape \(6,\)"),
        (dict(val_targets=np.zeros(7, dtype=np.int64)), r"val_targets must have shape \(8,\)"),
        (dict(test_targets=TEST_TARGETS + 1), "class indices"),
        (dict(mul_adds=[1.0, 2.0]), "mul_adds must hold 3"),
        (dict(val_probs=VAL * 3), "probabilities in"),
        (dict(val_probs=VAL - 0.5), "probabilities in"),
        (dict(val_probs=VAL[0]), "shape"),
    ],
)
def test_dynamic_evaluate_rejects_bad_inputs(change, message):
    kwargs = dict(
        val_probs=VAL,
        val_targets=VAL_TARGETS,
        test_probs=TEST,
        test_targets=TEST_TARGETS,
        mul_adds=MUL_ADDS,
        qs=[1.0],
    )
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        dynamic_evaluate(**kwargs)


def test_find_thresholds_rejects_bad_shares():
    with pytest.raises(ValueError, match="one value per exit"):
        find_thresholds(VAL, [0.5, 0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        find_thresholds(VAL, [0.5, 0.5, 0.5])
