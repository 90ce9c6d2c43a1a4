"""Meta-data allocation (Sec. 3.2): counts, exclusivity, order; q < 1, q = 1, q > 1; tiny batches."""

from __future__ import annotations

import numpy as np
import pytest

from tinyexit.l2w import allocate, exit_shares


def _conf(k, n, seed=0):
    return np.random.default_rng(seed).random((k, n))


@pytest.mark.parametrize("q, k", [(0.5, 3), (0.75, 5), (1.0, 4), (1.5, 3), (2.0, 2)])
def test_counts_exclusivity_and_cover(q, k):
    n = 37
    subsets = allocate(_conf(k, n), q)
    shares = exit_shares(q, k)
    for j in range(k - 1):
        assert len(subsets[j]) == int(np.floor(n * shares[j]))
    everything = np.concatenate(subsets)
    assert len(everything) == n and set(everything.tolist()) == set(range(n))


def test_shares():
    np.testing.assert_allclose(exit_shares(1.0, 4), [0.25] * 4)
    p = exit_shares(0.5, 3)  # 0.5, 0.25, 0.125 normalised
    np.testing.assert_allclose(p, np.array([4, 2, 1]) / 7)
    assert np.all(np.diff(exit_shares(2.0, 3)) > 0)
    with pytest.raises(ValueError, match="positive"):
        exit_shares(0.0, 3)


def test_each_exit_takes_its_most_confident_free_samples_in_order():
    conf = np.array(
        [
            [0.9, 0.1, 0.8, 0.7, 0.2, 0.3],  # exit 1
            [0.95, 0.9, 0.1, 0.85, 0.3, 0.2],  # exit 2
            [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
        ]
    )  # exit 3
    subsets = allocate(conf, 1.0)  # n_k = floor(6/3) = 2 each
    np.testing.assert_array_equal(subsets[0], [0, 2])  # exit 1's two most confident
    np.testing.assert_array_equal(subsets[1], [1, 3])  # exit 2: 0 is taken, so 1 (0.9) then 3 (0.85)
    np.testing.assert_array_equal(subsets[2], [4, 5])  # the rest


def test_batch_too_small_for_every_exit():
    subsets = allocate(_conf(4, 3), 0.75)  # shares 0.37, 0.28, 0.21: floors 1, 0, 0
    assert [len(s) for s in subsets] == [1, 0, 0, 2]
    subsets = allocate(_conf(3, 1), 0.5)
    assert [len(s) for s in subsets] == [0, 0, 1]


def test_bad_input():
    with pytest.raises(ValueError, match="num_exits, n"):
        allocate(np.zeros(5), 0.75)
