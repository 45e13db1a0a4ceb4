"Tests for chapter 10 (curation) and paper 2's soft-label loss (chapter 6's `soft_clap_loss`)."
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from clapbook.curation import (ReplayCollate, TeacherPairs, _rows_of, chunked_search, curate, curate_ads, curate_ds,
                               curate_du, embed_to_disk, read_captions)
from clapbook.losses import clap_loss, soft_clap_loss, soft_targets


def _dense(q, k):
    return (F.normalize(torch.from_numpy(np.asarray(q, np.float32)), dim=1)
            @ F.normalize(torch.from_numpy(np.asarray(k, np.float32)), dim=1).T).numpy()


# ---------------------------------------------------------------- chunked similarity search
@pytest.mark.parametrize("qc,kc,mem", [(7, 5, 512), (1, 100, 512), (64, 3, 0), (1000, 1000, 0)])
def test_chunked_search_equals_dense(qc, kc, mem):
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((37, 12)).astype(np.float32), rng.standard_normal((29, 12)).astype(np.float32)
    r = chunked_search(q, k, k=5, threshold=0.25, query_chunk=qc, key_chunk=kc, key_memory_mb=mem)
    d = _dense(q, k)
    order = np.argsort(-d, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(r["index"], order)
    np.testing.assert_allclose(r["score"], np.take_along_axis(d, order, 1), atol=1e-5)
    qi, ki = np.nonzero(d >= 0.25)
    np.testing.assert_array_equal(r["pairs"], np.stack([qi, ki], 1))
    np.testing.assert_allclose(r["pair_score"], d[qi, ki], atol=1e-5)


def test_chunked_search_memmap_and_k_larger_than_keys(tmp_path):
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal((50, 8)).astype(np.float32), rng.standard_normal((4, 8)).astype(np.float32)
    np.save(tmp_path / "q.npy", q); np.save(tmp_path / "k.npy", k)
    qm, km = np.load(tmp_path / "q.npy", mmap_mode="r"), np.load(tmp_path / "k.npy", mmap_mode="r")
    np.testing.assert_array_equal(_rows_of(qm, 10, 17), q[10:17])           # plain reads of the right rows
    np.testing.assert_array_equal(_rows_of(qm[5:], 0, 3), q[5:8])            # a view falls back to slicing
    r = chunked_search(qm, km, k=10, query_chunk=16, key_chunk=3)
    assert r["index"].shape == (50, 4)                                         # k is capped at the number of keys
    np.testing.assert_array_equal(r["index"], np.argsort(-_dense(q, k), axis=1))
    assert r["pairs"].shape == (0, 2)                                          # no threshold, no pairs


def test_chunked_search_errors():
    with pytest.raises(ValueError, match="dimensions"): chunked_search(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="queries must be a non-empty 2-D"): chunked_search(np.zeros((0, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="k must be"): chunked_search(np.ones((2, 3)), np.ones((2, 3)), k=0)


def test_embed_to_disk_roundtrip(tmp_path):
    x = np.arange(21, dtype=np.float32).reshape(7, 3)
    m = embed_to_disk(lambda b: torch.from_numpy(np.stack(b)), list(x), tmp_path / "e.npy", batch_size=2, progress=False)
    np.testing.assert_array_equal(np.asarray(m), x)
    with pytest.raises(ValueError, match="no items"): embed_to_disk(lambda b: b, [], tmp_path / "z.npy", progress=False)


# ---------------------------------------------------------------- curation strategies, known answers
def test_du_ds_ads_known_answer():
    caps = np.eye(4, dtype=np.float32)                        # captions 0..3 along the axes
    pool = np.array([[1, 0, 0, 0], [0.1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0.2, 1], [0.05, 0, 0, 1]], np.float32)
    du = curate_du(pool, caps, threshold=0.9)
    assert du["audio"].tolist() == [0, 1, 3, 4] and du["caption"].tolist() == [0, 1, 3, 3]   # clip 2 is 0.71 from both
    du2 = curate_du(pool, caps, threshold=0.7, k=2)
    assert list(zip(du2["audio"], du2["caption"])) == [(0, 0), (1, 1), (2, 2), (2, 3), (3, 3), (4, 3)]
    prompts = np.array([[0, 0.1, 0, 1]], np.float32)          # the downstream prompt is near caption 3
    ds = curate_ds(caps, prompts, threshold=0.9)
    assert ds["pair"].tolist() == [3] and ds["prompt"].tolist() == [0]
    ads = curate_ads(pool, caps, ds, threshold=0.9)
    assert ads["audio"].tolist() == [3, 4] and ads["caption"].tolist() == [3, 3]
    assert len(curate_ads(pool, caps, [], threshold=0.0)) == 0


# ---------------------------------------------------------------- soft-label loss (paper 2, eqs. 2-5)
def test_soft_loss_beta_zero_is_clap_loss():
    g = torch.Generator().manual_seed(0)
    a, t, ta, tt = (torch.randn(9, 16, generator=g) for _ in range(4))
    for scale in (1.0, 14.3, 50.0):
        torch.testing.assert_close(soft_clap_loss(a, t, scale, ta, tt, beta=0.0), clap_loss(a, t, scale))


def test_soft_loss_symmetric():
    g = torch.Generator().manual_seed(1)
    a, t, ta, tt = (torch.randn(6, 8, generator=g) for _ in range(4))
    # swapping the modalities (and their teachers) swaps L_t and L_a: the total is unchanged
    torch.testing.assert_close(soft_clap_loss(a, t, 10.0, ta, tt), soft_clap_loss(t, a, 10.0, tt, ta))
    # identical towers and identical teachers: both halves are equal, so each equals the total
    y = soft_targets(ta, 0.3, 5.0)
    logits = 10.0 * F.normalize(a, dim=1) @ F.normalize(a, dim=1).T
    half = F.kl_div(F.log_softmax(logits, 1), y, reduction="batchmean")
    torch.testing.assert_close(soft_clap_loss(a, a, 10.0, ta, ta, beta=0.3, teacher_scale=5.0), half)
    # a teacher whose batch items are orthogonal, seen at a huge scale, gives one-hot targets: eq. (4) again
    eye = torch.eye(6, 8)
    torch.testing.assert_close(soft_clap_loss(a, t, 10.0, eye, eye, beta=0.7, teacher_scale=1e4), clap_loss(a, t, 10.0))


def test_soft_loss_hand_computed_3x3():
    a = [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]            # unit rows already
    t = [[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]]
    ta = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]           # the teacher hears clips 0 and 1 as the same sound
    tt = [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]           # ... and reads captions 1 and 2 as the same text
    beta, s, st = 0.5, 2.0, 3.0
    dot = lambda u, v: sum(x * y for x, y in zip(u, v))
    def softmax(row):
        e = [math.exp(x) for x in row]; z = sum(e); return [x / z for x in e]
    def targets(emb):
        return [[(1 - beta) * (i == j) + beta * p for j, p in enumerate(softmax([st * dot(emb[i], e) for e in emb]))]
                for i in range(3)]
    def kl(y, p): return sum(yi * (math.log(yi) - math.log(pi)) for yi, pi in zip(y, p) if yi > 0)
    C = [[s * dot(a[i], t[j]) for j in range(3)] for i in range(3)]                     # rows: clips
    l_t = sum(kl(targets(ta)[i], softmax(C[i])) for i in range(3)) / 3
    l_a = sum(kl(targets(tt)[j], softmax([C[i][j] for i in range(3)])) for j in range(3)) / 3
    by_hand = 0.5 * (l_t + l_a)
    got = soft_clap_loss(torch.tensor(a), torch.tensor(t), s, torch.tensor(ta), torch.tensor(tt), beta=beta, teacher_scale=st)
    assert abs(got.item() - by_hand) < 1e-6
    hard = clap_loss(torch.tensor(a), torch.tensor(t), s).item()
    assert abs(got.item() - hard) > 1e-3                # the teacher's similarities change the loss


def test_soft_targets_rows_are_distributions_and_errors():
    y = soft_targets(torch.randn(5, 3), beta=0.4)
    torch.testing.assert_close(y.sum(1), torch.ones(5))
    assert (y >= 0).all() and (torch.diagonal(y) >= 0.6).all()
    with pytest.raises(ValueError, match="beta"): soft_targets(torch.randn(3, 2), beta=-0.1)
    with pytest.raises(ValueError, match="teacher_audio has 2 rows"):
        soft_clap_loss(torch.randn(3, 4), torch.randn(3, 4), 1.0, torch.randn(2, 4), torch.randn(2, 4))


def test_soft_loss_gradient_reaches_student_only():
    a, t = torch.randn(4, 6, requires_grad=True), torch.randn(4, 6, requires_grad=True)
    ta, tt = torch.randn(4, 6, requires_grad=True), torch.randn(4, 6, requires_grad=True)
    soft_clap_loss(a, t, 5.0, ta, tt).backward()
    assert a.grad is not None and t.grad is not None and ta.grad is None and tt.grad is None


# ---------------------------------------------------------------- replay
def _pairs(n, value, d=4):
    return TeacherPairs(list(np.full((n, 32000), value, np.float32)), [f"c{i}" for i in range(n)], range(n), range(n),
                        np.ones((n, d), np.float32), np.ones((n, d), np.float32))


def test_replay_proportions():
    cur, rep = _pairs(64, 0.0), _pairs(8, 1.0)
    rng = np.random.default_rng(0)
    batches = [[cur[int(i)] for i in rng.choice(64, 4, replace=False)] for _ in range(300)]
    for p in (0.1, 0.3, 0.5):
        got = [ReplayCollate(rep, p, seed=2)(b) for b in batches]
        frac = np.mean([g["replayed"] for g in got])
        assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / len(batches)), (p, frac)
        assert all(g["wave"].mean().item() == float(g["replayed"]) for g in got)      # replayed batches hold replay clips
    assert not any(ReplayCollate(rep, 0.0)(b)["replayed"] for b in batches[:50])
    assert all(ReplayCollate(rep, 1.0)(b)["replayed"] for b in batches[:50])
    same = [ReplayCollate(rep, 0.5, seed=9)(b)["replayed"] for b in batches[:50]]
    assert same == [ReplayCollate(rep, 0.5, seed=9)(b)["replayed"] for b in batches[:50]]     # deterministic per batch


def test_replay_and_pairs_errors():
    with pytest.raises(ValueError, match="probability"): ReplayCollate(_pairs(2, 0.0), 1.5)
    with pytest.raises(ValueError, match="non-empty replay"): ReplayCollate(None, 0.5)
    with pytest.raises(ValueError, match="caption ids"):
        TeacherPairs([0, 1], ["a", "b"], [0, 1], [0], np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="audio_index out of range"):
        TeacherPairs([0, 1], ["a", "b"], [0, 2], [0, 1], np.zeros((2, 3)), np.zeros((2, 3)))


# ---------------------------------------------------------------- curate() on files
def test_read_captions(tmp_path):
    (tmp_path / "c.txt").write_text("a dog barks\n\n a bell rings \n")
    assert read_captions(tmp_path / "c.txt")["caption"].tolist() == ["a dog barks", "a bell rings"]
    (tmp_path / "c.csv").write_text("file_name,text\nx.wav,hi\n")
    with pytest.raises(ValueError, match="no 'caption' column"): read_captions(tmp_path / "c.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"): read_captions(tmp_path / "nope.txt")


def test_curate_files(tmp_path):
    from clapbook.model import CLAP, CLAP_PRESETS
    from clapbook.data import load_clips
    torch.manual_seed(0)
    model = CLAP(CLAP_PRESETS["tiny-gpt2"])
    pool = tmp_path / "pool"; (pool / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5): sf.write(pool / ("sub" if i % 2 else "") / f"clip{i}.wav", 0.1 * rng.standard_normal(16000), 16000)
    (tmp_path / "caps.txt").write_text("a dog barks\na bell rings\nrain falls\n")
    out = curate(model, pool, tmp_path / "caps.txt", "du", threshold=-1.0, out_dir=tmp_path / "cur", progress=False)
    assert len(out) == 5 and list(out.columns) == ["file_name", "caption", "similarity"]
    back = load_clips(tmp_path / "cur", split="train", check=True)                # every relative path resolves
    assert back["caption"] == out["caption"].tolist()
    assert np.load(tmp_path / "cur" / "embeddings" / "audio.npy").shape == (5, model.config.joint_dim)
    none = curate(model, pool, tmp_path / "caps.txt", "du", threshold=1.01, out_dir=tmp_path / "none", progress=False)
    assert len(none) == 0 and (tmp_path / "none" / "metadata.csv").read_text().startswith("file_name,caption,similarity")
    # DS keeps training pairs: captions from an audio folder's metadata.csv
    pd.DataFrame({"file_name": ["sub/clip1.wav", "clip0.wav"], "caption": ["a dog barks", "rain falls"]}).to_csv(pool / "metadata.csv", index=False)
    ds = curate(model, None, pool / "metadata.csv", "ds", threshold=-1.0, labels="dog,rain", out_dir=tmp_path / "ds", progress=False)
    assert sorted(ds["caption"]) == ["a dog barks", "rain falls"] and set(ds["label"]) <= {"dog", "rain"}
    assert (tmp_path / "ds" / ds["file_name"][0]).resolve().exists()
    with pytest.raises(ValueError, match="strategy must be"): curate(model, pool, tmp_path / "caps.txt", "xx", out_dir=tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="audio folder"):
        curate(model, tmp_path / "missing", tmp_path / "caps.txt", "du", out_dir=tmp_path / "x", progress=False)
