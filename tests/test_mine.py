import numpy as np
import pytest

from embedlab.mine import (
    b3_batches,
    hardneg_batches,
    kmeans_batches,
    random_batches,
    topk_neighbours,
)
from embedlab.mine.b3 import mutual_graph
from embedlab.mine.batches import batch_table, fill_batches, in_batch_similarity
from embedlab.mine.diagnostics import duplicate_texts, false_negative_rate


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


def test_b3_with_clusters_as_large_as_the_batch_makes_every_batch_one_cluster():
    """cluster_size="batch": each batch is one METIS cluster, the same rows in every epoch
    (only their order changes), and it is harder than batches of clusters of 8."""
    emb = clustered(800)
    whole, _, stats = b3_batches(emb, None, 32, 2, 0, p=2, m=16, cluster_size="batch")
    eight, _, _ = b3_batches(emb, None, 32, 2, 0, p=2, m=16, cluster_size=8)
    assert stats["clusters"] == 25
    assert {frozenset(b) for b in whole[0]} == {frozenset(b) for b in whole[1]}
    assert in_batch_similarity(emb, whole).mean() > in_batch_similarity(emb, eight).mean()
    with pytest.raises(ValueError, match="cluster_size='half'"):
        b3_batches(emb, None, 32, 1, 0, cluster_size="half")


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


def test_fill_batches_never_puts_a_text_twice_in_a_batch():
    texts = ["a", "a", "a", "b", "c", "d", "e", "f"]
    batches = fill_batches(list(range(8)), texts, batch_size=3)
    assert all(len({texts[r] for r in b}) == 3 for b in batches)
    assert len(batches) == 2  # the third "a" cannot join a full batch: dropped


def test_random_miner_spreads_duplicate_texts():
    emb = clustered(64)
    texts = [f"text {i % 40}" for i in range(64)]  # 24 texts appear twice
    epochs, _, _ = random_batches(emb, texts, 16, 3, 0)
    assert duplicate_texts(texts, epochs) == 0
    assert all(len(b) == 16 for e in epochs for b in e)


def test_kmeans_batches_are_harder_than_random():
    emb = clustered(640)
    km, _, stats = kmeans_batches(emb, None, 32, 2, 0)
    rnd, _, _ = random_batches(emb, None, 32, 2, 0)
    assert in_batch_similarity(emb, km).mean() > in_batch_similarity(emb, rnd).mean() + 0.1
    assert stats["clusters"] == 20
    assert all(len(b) == 32 for e in km for b in e)


def test_hardneg_respects_the_margin_to_the_positive():
    emb = clustered(300)
    rng = np.random.default_rng(1)
    pos = emb + 0.2 * rng.standard_normal(emb.shape).astype(np.float32)
    pos /= np.linalg.norm(pos, axis=1, keepdims=True)
    epochs, negatives, stats = hardneg_batches(
        emb,
        None,
        32,
        1,
        0,
        positives=pos,
        p=0,
        m=16,
        hard_negatives=2,
        margin=0.1,
        margin_type="absolute",
    )
    pos_sim = (emb * pos).sum(1)
    checked = 0
    for row, negs in negatives.items():
        assert len(negs) <= 2 and row not in negs
        for j in negs:
            assert emb[row] @ emb[j] < pos_sim[row] - 0.1
            checked += 1
    assert checked > 100 and stats["removed_by_margin"] > 0
    with pytest.raises(ValueError, match="positives"):
        hardneg_batches(emb, None, 32, 1, 0)


def test_b3_handles_a_disconnected_graph():
    """Two orthogonal groups and a sparse window leave components and isolated nodes: METIS
    still places every example (isolated ones where balance needs them), and stats say so."""
    rng = np.random.default_rng(0)
    far = np.zeros((64, 8), dtype=np.float32)
    far[:32, 0], far[32:, 1] = 1, 1  # two groups, orthogonal: no edge between them
    emb = far + 0.05 * rng.standard_normal(far.shape).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    epochs, _, stats = b3_batches(emb, None, 16, 1, 0, p=1, m=4, cluster_size=8)
    assert sorted(r for b in epochs[0] for r in b) == list(range(64))
    assert stats["isolated"] > 0 and stats["left_out"] == 0


def test_false_negative_rate_counts_pairs_closer_than_the_positive():
    anchor = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    positive = np.array([[0.6, 0.8], [1, 0], [0, 1]], dtype=np.float32)
    # pairs (0,1): sim 1 > pos 0.6 -> hit; (1,0): 1 > 1 no; all others 0 < pos
    assert false_negative_rate(anchor, positive, [[[0, 1, 2]]]) == pytest.approx(1 / 6)


@pytest.mark.parametrize("backend", ["faiss-exact", "faiss-ivf", "cells"])
def test_faiss_backends_agree_with_exact_search(backend):
    emb = clustered(3000, d=32, centres=30)
    exact, exact_sim = topk_neighbours(emb, k=10, backend="exact")
    got, got_sim = topk_neighbours(emb, k=10, backend=backend)
    assert not (got == np.arange(3000)[:, None]).any()  # never itself
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact, strict=True)])
    assert recall > (0.999 if backend == "faiss-exact" else 0.9), recall
    ranked = got_sim[:, :-1] >= got_sim[:, 1:]  # best first, with the similarity of each id
    assert ranked.all() and np.allclose(got_sim, np.take_along_axis(emb @ emb.T, got, 1), atol=1e-5)
    if backend == "faiss-exact":
        np.testing.assert_allclose(got_sim, exact_sim, atol=1e-5)


def test_mutual_graph_ignores_missing_neighbours():
    xadj, adjncy = mutual_graph(np.array([[1, -1], [0, -1], [-1, -1]]))
    assert [adjncy[xadj[i] : xadj[i + 1]].tolist() for i in range(3)] == [[1], [0], []]


def test_mutual_graph_is_the_set_of_edges_both_ends_chose():
    rng = np.random.default_rng(0)
    n, k = 300, 12
    candidates = np.array([rng.choice(n, k, replace=False) for _ in range(n)])
    candidates[rng.random((n, k)) < 0.1] = -1  # an approximate search's missing neighbours
    chose = {(i, int(j)) for i in range(n) for j in candidates[i] if j >= 0}
    xadj, adjncy = mutual_graph(candidates)
    got = {(i, int(j)) for i in range(n) for j in adjncy[xadj[i] : xadj[i + 1]]}
    assert got == {(i, j) for i, j in chose if (j, i) in chose} and got
    assert all((np.diff(adjncy[xadj[i] : xadj[i + 1]]) > 0).all() for i in range(n))  # sorted


def test_recursive_metis_gives_whole_clusters_at_least_as_hard_as_k_way():
    emb = clustered(2048, d=32, centres=64)
    hardness = {}
    for detector in ("metis", "metis-recursive"):
        epochs, _, stats = b3_batches(
            emb, None, 64, 1, 0, p=2, m=30, cluster_size=16, detector=detector
        )
        rows = [r for batch in epochs[0] for r in batch]
        assert len(rows) == len(set(rows)) == 2048 - stats["dropped_per_epoch"]
        hardness[detector] = in_batch_similarity(emb, epochs).mean()
    assert hardness["metis-recursive"] > 0.95 * hardness["metis"]


def test_recursive_metis_gives_the_same_parts_on_one_cpu_as_on_two(monkeypatch):
    from embedlab.mine.b3 import partition

    emb = clustered(4096, d=32, centres=64)
    xadj, adjncy = mutual_graph(topk_neighbours(emb, 24)[0][:, 4:])
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    graph = [xadj, adjncy]
    two, _ = partition(graph, 128, "metis-recursive", 0)  # halves in two processes
    assert graph == []  # handed over: freed once the halves were cut out
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a Snakemake job with threads: 1
    one, _ = partition([xadj, adjncy], 128, "metis-recursive", 0)
    np.testing.assert_array_equal(one, two)
    assert sorted(np.unique(one)) == list(range(128))


def _fails(kind: str) -> None:
    import os

    if kind == "raise":
        raise MemoryError("no room for the graph")
    os._exit(9)  # killed, as by the OOM killer


@pytest.mark.parametrize("kind, said", [("raise", "MemoryError: no room"), ("die", "it died")])
def test_a_forked_metis_process_that_fails_stops_the_miner_saying_how(kind, said):
    from embedlab.mine.b3 import _in_forked_processes

    assert _in_forked_processes(pow, [(2, 3), (3, 2)]) == [8, 9]
    with pytest.raises(RuntimeError, match=f"a METIS process failed \\({said}"):
        _in_forked_processes(_fails, [(kind,)])


def test_unknown_knn_backend_is_named():
    with pytest.raises(ValueError, match="unknown knn backend 'annoy'"):
        topk_neighbours(clustered(20), k=3, backend="annoy")


def test_b3_with_louvain_communities_is_harder_than_random():
    emb = clustered(400)
    b3, _, stats = b3_batches(emb, None, 32, 1, 0, p=2, m=16, cluster_size=8, detector="louvain")
    rnd, _, _ = random_batches(emb, None, 32, 1, 0)
    assert in_batch_similarity(emb, b3).mean() > in_batch_similarity(emb, rnd).mean() + 0.1
    assert all(len(b) == 32 and len(set(b)) == 32 for b in b3[0])
    with pytest.raises(ValueError, match="unknown community detector .spectral."):
        b3_batches(emb, None, 32, 1, 0, detector="spectral")


@pytest.mark.parametrize("detector", ["metis-recursive", "metis"])
def test_graph_parts_from_the_saved_neighbours_are_the_partition_of_their_graph(tmp_path, detector):
    from embedlab.mine.b3 import graph_parts, inside_degree, partition

    neighbours = topk_neighbours(clustered(4096, d=32, centres=64), 24)[0]
    np.save(tmp_path / "neighbours.npy", neighbours)
    parts, degree, stats = graph_parts(str(tmp_path / "neighbours.npy"), 4, 128, detector, 0)
    xadj, adjncy = mutual_graph(neighbours[:, 4:])
    np.testing.assert_array_equal(parts, partition([xadj, adjncy], 128, detector, 0)[0])
    # for recursive bisection the halves count the in-part degrees: the whole graph's count
    np.testing.assert_array_equal(degree, inside_degree(parts, xadj, adjncy))
    assert degree.sum() > 0 and stats["edges"] == len(adjncy) / 2


def near_duplicates(copies: int = 4, n: int = 60, seed: int = 0) -> np.ndarray:
    """Groups of near-identical rows (captions of one image, paraphrases): their similarities
    tie to the last bits, where float noise decides the ranks."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 16)).astype(np.float32)
    noise = [1e-4 * rng.standard_normal(base.shape).astype(np.float32) for _ in range(copies)]
    emb = np.concatenate([base + e for e in noise])
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_b3_batches_survive_float_noise_in_the_teacher_embeddings():
    """Embeddings perturbed by ~1e-7 (what another thread count or BLAS changes) give the same
    batches and negatives: ranks come from similarities rounded to 3 decimals, ties by index.
    Raw ranks (decimals=None) do not survive it on this data."""
    emb = near_duplicates()
    rng = np.random.default_rng(1)
    noisy = emb + 1e-7 * rng.standard_normal(emb.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    assert 0 < np.abs(noisy - emb).max() < 1e-6
    texts = [""] * len(emb)
    options = dict(batch_size=16, epochs=2, seed=0, p=2, m=8, cluster_size=4)
    stable = b3_batches(emb, texts, **options)
    assert b3_batches(noisy, texts, **options)[:2] == stable[:2]
    raw = [b3_batches(e, texts, **options, decimals=None)[:2] for e in (emb, noisy)]
    assert raw[0] != raw[1]  # what the rounding is for


def test_stable_ranks_break_ties_by_index_among_candidates_beyond_k():
    from embedlab.mine.knn import topk_neighbours

    emb = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8], [0.6, 0.8], [0.0, 1.0]], np.float32)
    emb[3] += 1e-6  # above row 1 and 2 in raw similarity to row 0, tied after rounding
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert topk_neighbours(emb, 1, backend="exact")[0][0, 0] == 3
    assert topk_neighbours(emb, 1, backend="exact", decimals=4)[0][0, 0] == 1
