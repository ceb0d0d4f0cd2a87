import numpy as np
import pytest

from embedlab.mine import b3_batches, random_batches, topk_neighbours
from embedlab.mine.batches import batch_table, in_batch_similarity


def clustered(n: int, d: int = 16, centres: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    x = c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_blocked_topk_equals_brute_force():
    emb = clustered(300)
    idx, sim = topk_neighbours(emb, k=7, block=64)
    full = emb @ emb.T
    np.fill_diagonal(full, -np.inf)
    expected = np.argsort(-full, axis=1, kind="stable")[:, :7]
    np.testing.assert_allclose(sim, np.take_along_axis(full, expected, 1), rtol=1e-5)
    assert (np.sort(idx, 1) == np.sort(expected, 1)).mean() > 0.99  # ties may reorder


def test_random_batches_full_unique_and_seeded():
    emb = clustered(100)
    epochs, negatives, stats = random_batches(emb, None, batch_size=32, epochs=3, seed=1)
    again, _, _ = random_batches(emb, None, batch_size=32, epochs=3, seed=1)
    assert epochs == again and negatives == {}
    assert all(len(b) == 32 and len(set(b)) == 32 for e in epochs for b in e)
    assert len(epochs[0]) == 3 and stats["dropped_per_epoch"] == 4
    assert epochs[0] != epochs[1]


def test_b3_batches_are_harder_than_random():
    emb = clustered(800)
    b3, negatives, stats = b3_batches(emb, None, 32, 2, 0, p=2, m=16, cluster_size=8)
    rnd, _, _ = random_batches(emb, None, 32, 2, 0)
    assert in_batch_similarity(emb, b3).mean() > in_batch_similarity(emb, rnd).mean() + 0.1
    assert all(len(b) == 32 and len(set(b)) == 32 for e in b3 for b in e)
    assert stats["clusters"] == 100 and stats["left_out"] == 0


def test_b3_clusters_are_whole_and_hard_negatives_outside():
    emb = clustered(203)
    epochs, negatives, _ = b3_batches(
        emb, None, 16, 2, 3, p=1, m=8, cluster_size=4, hard_negatives=2
    )
    # every aligned run of 4 positions is one cluster, the same in every epoch
    clusters = {tuple(sorted(b[i : i + 4])) for e in epochs for b in e for i in range(0, 16, 4)}
    members = [r for c in clusters for r in c]
    assert len(members) == len(set(members))
    for cluster in clusters:
        for row in cluster:
            assert not set(negatives[row]) & set(cluster)
            assert len(negatives[row]) == 2


def test_b3_is_deterministic():
    emb = clustered(400)
    a = b3_batches(emb, None, 32, 2, 5, p=2, m=16, cluster_size=8)
    b = b3_batches(emb, None, 32, 2, 5, p=2, m=16, cluster_size=8)
    assert a[0] == b[0] and a[1] == b[1]


def test_degenerate_inputs_give_clear_errors():
    emb = clustered(20)
    with pytest.raises(ValueError, match="only 20 examples for batch size 32"):
        random_batches(emb, None, 32, 1, 0)
    with pytest.raises(ValueError, match="cluster_size=6 must divide batch size 16"):
        b3_batches(emb, None, 16, 1, 0, cluster_size=6)
    with pytest.raises(ValueError, match="rank window"):
        b3_batches(emb, None, 16, 1, 0, p=10, m=10, cluster_size=4)


def test_batch_table_keeps_order():
    table = batch_table([[[2, 0], [1, 3]]], ["a", "b", "c", "d"], {2: [3]})
    assert table["id"].to_list() == ["c", "a", "b", "d"]
    assert table["batch"].to_list() == [0, 0, 1, 1]
    assert table["hard_negative_ids"].to_list() == [["d"], [], [], []]
