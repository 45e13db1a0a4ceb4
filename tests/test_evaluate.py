"""Tests for clapbook.evaluate: zero-shot classification, metrics and retrieval on hand-made inputs."""
import io
import math
import warnings
import zlib

import numpy as np
import plotly.graph_objects as go
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from sklearn import metrics as skm

from clapbook.evaluate import (DEFAULT_TEMPLATE, accuracy, average_precision, class_text_embeddings,
                               confusion_matrix, evaluate_retrieval, evaluate_zero_shot, f1_score,
                               make_prompts, mean_average_precision, plot_confusion, plot_similarity,
                               retrieval_metrics, zero_shot_classify, zero_shot_logits,
                               zero_shot_probabilities, zero_shot_score)

# ---------------------------------------------------------------- a fake model (protocol test double)
CLASS_HZ = {"dog": 300.0, "rain": 1200.0, "siren": 4000.0}
SR = 16000


def word_vector(word, d=32):
    return torch.randn(d, generator=torch.Generator().manual_seed(zlib.crc32(word.encode())))


def wav_bytes(freq_hz, seconds=0.2):
    t = np.arange(int(seconds * SR)) / SR
    buf = io.BytesIO()
    sf.write(buf, (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32), SR, format="WAV")
    return buf.getvalue()


class FakeModel:
    """Texts: sum of fixed random word vectors. Audio ({"bytes","path"} dicts): the vector of the class
    whose frequency is nearest to the clip's strongest frequency. Records what it was called with."""

    def __init__(self):
        self.logit_scale = torch.tensor(10.0)      # a tensor, like a model's clamped exp(log_scale)
        self.audio_calls, self.text_calls = [], []

    def embed_text(self, texts, batch_size=32):
        self.text_calls.append((list(texts), batch_size))
        return F.normalize(torch.stack([sum(word_vector(w) for w in t.lower().split()) for t in texts]), dim=-1)

    def embed_audio(self, items, batch_size=32, **kwargs):
        self.audio_calls.append((list(items), batch_size, kwargs))
        out = []
        for item in items:
            assert set(item) == {"bytes", "path"}, item.keys()
            x, sr = sf.read(io.BytesIO(item["bytes"]))
            f = np.fft.rfftfreq(len(x), 1 / sr)[np.abs(np.fft.rfft(x)).argmax()]
            word = min(CLASS_HZ, key=lambda w: abs(math.log(f / CLASS_HZ[w])))
            out.append(word_vector(word))
        return F.normalize(torch.stack(out), dim=-1)


def tone_dataset(freqs, **columns):
    from datasets import Audio, Dataset
    audio = [{"bytes": wav_bytes(f), "path": f"clip_{i}.wav"} for i, f in enumerate(freqs)]
    return Dataset.from_dict({"audio": audio, **columns}).cast_column("audio", Audio(decode=False))


# ---------------------------------------------------------------- prompts and zero-shot
def test_make_prompts():
    assert make_prompts(["dog", "rain"]) == ["this is a sound of dog", "this is a sound of rain"]
    assert DEFAULT_TEMPLATE == "this is a sound of {label}"
    assert make_prompts(["x"], "{label} {label}!") == ["x x!"]
    with pytest.raises(ValueError, match="containing '{label}'"):
        make_prompts(["dog"], "no placeholder")
    with pytest.raises(ValueError, match="non-empty string"):
        make_prompts(["dog", ""])
    with pytest.raises(TypeError, match="list of class names"):
        make_prompts("dog")


def test_class_text_embeddings_single_template():
    m = FakeModel()
    emb = class_text_embeddings(m, ["dog", "rain"])
    assert emb.shape == (2, 32)
    torch.testing.assert_close(emb, m.embed_text(["this is a sound of dog", "this is a sound of rain"]))


def test_prompt_ensemble_is_mean_of_normalised_then_normalised():
    m = FakeModel()
    templates = ["a {label}", "the sound of {label} outside", "{label}"]
    emb = class_text_embeddings(m, ["dog", "rain", "siren"], templates, batch_size=7)
    assert len(m.text_calls) == 1 and len(m.text_calls[0][0]) == 9 and m.text_calls[0][1] == 7  # one call, K*C prompts
    per_t = torch.stack([F.normalize(m.embed_text(make_prompts(["dog", "rain", "siren"], t)), dim=-1) for t in templates])
    torch.testing.assert_close(emb, F.normalize(per_t.mean(0), dim=-1))
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    # an unnormalised model output must not let one template dominate
    class Scaled(FakeModel):
        def embed_text(self, texts, batch_size=32):
            return super().embed_text(texts) * torch.arange(1, len(texts) + 1)[:, None]
    torch.testing.assert_close(class_text_embeddings(Scaled(), ["dog", "rain", "siren"], templates), emb)


def test_class_text_embeddings_bad_model_output():
    class Bad(FakeModel):
        def embed_text(self, texts, batch_size=32):
            return torch.zeros(len(texts) + 1, 4)
    with pytest.raises(ValueError, match=r"model.embed_text returned \(3, 4\) for 2 inputs"):
        class_text_embeddings(Bad(), ["dog", "rain"])
    with pytest.raises(ValueError, match="templates is empty"):
        class_text_embeddings(FakeModel(), ["dog"], [])


def test_zero_shot_logits_and_probabilities():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    c = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    logits = zero_shot_logits(a, c, 5.0)
    assert logits.shape == (3, 2)                           # rows = clips, columns = classes
    torch.testing.assert_close(logits, 5.0 * torch.tensor([[1.0, 0.0], [0.0, 1.0], [2**-0.5, 2**-0.5]]))
    p = zero_shot_probabilities(logits)
    torch.testing.assert_close(p.sum(1), torch.ones(3))
    torch.testing.assert_close(p[2], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(zero_shot_probabilities(logits, multi_label=True), torch.sigmoid(logits))
    with pytest.raises(ValueError, match=r"audio_emb has shape \(3, 2\) and class_emb has shape \(2, 3\)"):
        zero_shot_logits(a, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"class_emb must be a tensor of shape \(N, d\), got \(2,\)"):
        zero_shot_logits(a, torch.ones(2))
    with pytest.raises(ValueError, match=r"logits must be a tensor of shape \(N, C\)"):
        zero_shot_probabilities(torch.ones(3))


def test_zero_shot_classify_through_the_protocol():
    m = FakeModel()
    clips = [{"bytes": wav_bytes(f), "path": f"{f}.wav"} for f in (310, 4100, 1150, 290)]
    p = zero_shot_classify(m, clips, ["dog", "rain", "siren"], batch_size=3)
    assert p.shape == (4, 3)
    assert p.argmax(1).tolist() == [0, 2, 1, 0]
    torch.testing.assert_close(p.sum(1), torch.ones(4))
    assert m.audio_calls[0][0] == clips and m.audio_calls[0][1] == 3   # dicts handed over unchanged
    # the same with an ensemble and multi-label sigmoid
    p2 = zero_shot_classify(m, clips, ["dog", "rain", "siren"], template=["{label}", "a {label} again"], multi_label=True)
    assert p2.argmax(1).tolist() == [0, 2, 1, 0] and (p2.sum(1) > 1).all()

    class NoScale:
        embed_text, embed_audio = FakeModel().embed_text, FakeModel().embed_audio
    with pytest.raises(AttributeError, match="no logit_scale"):
        zero_shot_classify(NoScale(), clips, ["dog", "rain"])


# ---------------------------------------------------------------- classification metrics
def test_accuracy_and_confusion_from_scores():
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert accuracy(torch.tensor([0, 1, 1]), scores) == pytest.approx(2 / 3)
    assert confusion_matrix([0, 1], np.zeros((2, 5))).shape == (5, 5)      # C from the score width


def test_accuracy_confusion_match_sklearn():
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 6, 500), rng.random((500, 6))
    assert accuracy(y, s) == pytest.approx(skm.accuracy_score(y, s.argmax(1)))
    np.testing.assert_array_equal(confusion_matrix(y, s), skm.confusion_matrix(y, s.argmax(1), labels=range(6)))


def test_classification_errors():
    with pytest.raises(ValueError, match=r"targets holds class 7, outside 0..2"):
        confusion_matrix([0, 7], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="predictions holds class -1"):
        accuracy([0, 1], [0, -1])
    with pytest.raises(ValueError, match="integer class indices"):
        accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match=r"class indices of shape \(N,\)"):
        accuracy(np.zeros((2, 2)), [0, 1])
    with pytest.raises(ValueError, match="targets is empty"):
        accuracy([], [])


def test_average_precision_one_hot_targets():
    # single-label targets are one-hot encoded with C = score width
    np.testing.assert_allclose(average_precision([0, 1], [[0.9, 0.1], [0.2, 0.8]]), [1.0, 1.0])


def test_average_precision_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    for trial in range(5):
        y = (rng.random((150, 9)) < 0.25).astype(int)
        y[0] = 1                                              # every class has a positive
        s = np.round(rng.random((150, 9)), 1 + trial % 2)     # coarse scores -> many ties
        np.testing.assert_allclose(average_precision(y, s), skm.average_precision_score(y, s, average=None), atol=1e-12)
        assert mean_average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s, average="macro"), abs=1e-12)


def test_map_skips_and_counts_classes_without_positives():
    y = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0]])
    s = np.array([[0.9, 0.2, 0.1, 0.5], [0.3, 0.8, 0.4, 0.5], [0.2, 0.7, 0.3, 0.5]])
    ap = average_precision(y, s)
    assert np.isnan(ap[2]) and np.isnan(ap[3]) and np.isnan(ap).sum() == 2
    with pytest.warns(UserWarning, match="2 of 4 classes have no positive clip"):
        m = mean_average_precision(y, s)
    expected = np.mean([skm.average_precision_score(y[:, c], s[:, c]) for c in (0, 1)])
    assert m == pytest.approx(expected)
    with pytest.raises(ValueError, match="none of the 2 classes has a positive clip"):
        mean_average_precision(np.zeros((3, 2)), np.ones((3, 2)))


def test_multilabel_input_errors():
    with pytest.raises(ValueError, match=r"targets has shape \(3, 2\) but scores has shape \(3, 4\)"):
        average_precision(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="must be 0/1"):
        average_precision(np.full((3, 2), 2), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        average_precision(np.ones((2, 2)), np.array([[np.nan, 1], [0, 1]]))
    with pytest.raises(ValueError, match=r"scores must have shape \(N, C\)"):
        average_precision([0, 1], [0.1, 0.2])


def test_f1_known_and_sklearn():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    s = np.array([[0.9, 0.2, 0.1], [0.3, 0.8, 0.4], [0.2, 0.7, 0.3], [0.1, 0.1, 0.9]])
    # class 0: tp 1 fn 1 -> 2/3; class 1: tp 2 -> 1; class 2: fp 1 -> 0
    assert f1_score(y, s) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert f1_score(y, s, threshold=0.95) == pytest.approx(0.0)
    rng = np.random.default_rng(2)
    Y, S = (rng.random((300, 6)) < 0.3).astype(int), rng.random((300, 6))
    for thr in (0.2, 0.5, 0.8):
        assert f1_score(Y, S, threshold=thr) == pytest.approx(
            skm.f1_score(Y, S >= thr, average="macro", zero_division=0), abs=1e-12)
    Y[:, 5] = 0                                               # a class absent and never predicted
    assert f1_score(Y, S, threshold=1.1, zero_division=1.0) == pytest.approx(
        skm.f1_score(Y, S >= 1.1, average="macro", zero_division=1.0), abs=1e-12)
    yc, sc = rng.integers(0, 4, 400), rng.random((400, 4))
    assert f1_score(yc, sc) == pytest.approx(skm.f1_score(yc, sc.argmax(1), average="macro", labels=range(4)), abs=1e-12)
    assert f1_score([0, 1, 1], [0, 1, 0]) == pytest.approx(skm.f1_score([0, 1, 1], [0, 1, 0], average="macro"))


# ---------------------------------------------------------------- retrieval
def _embeddings_for(S):
    "Audio/text embeddings whose cosine matrix is proportional to S (rows of S must have equal norms)."
    S = torch.as_tensor(S, dtype=torch.float64)
    return S, torch.eye(S.shape[1], dtype=torch.float64)


def _row_with_rank(true_index, rank, n):
    values = torch.linspace(1.0, 0.1, n, dtype=torch.float64)
    row = torch.empty(n, dtype=torch.float64)
    row[true_index] = values[rank - 1]
    row[[i for i in range(n) if i != true_index]] = torch.cat([values[:rank - 1], values[rank:]])
    return row


def test_text_to_audio_true_match_at_rank_3():
    n = 10
    text = torch.stack([_row_with_rank(j, 3, n) for j in range(n)])   # every caption's clip at rank 3
    m = retrieval_metrics(torch.eye(n, dtype=torch.float64), text)
    assert m["text_to_audio/R@1"] == 0.0
    assert m["text_to_audio/R@5"] == 1.0 and m["text_to_audio/R@10"] == 1.0
    assert m["text_to_audio/mAP@10"] == pytest.approx(1 / 3)
    # mixed ranks, including one beyond 10
    ranks = [1, 3, 12, 2, 1, 10, 11, 5, 1, 4, 1, 7]
    n = len(ranks)
    text = torch.stack([_row_with_rank(j, r, n) for j, r in enumerate(ranks)])
    m = retrieval_metrics(torch.eye(n, dtype=torch.float64), text, ks=(1, 2, 10))
    r = np.array(ranks)
    assert m["text_to_audio/R@1"] == pytest.approx((r <= 1).mean())
    assert m["text_to_audio/R@2"] == pytest.approx((r <= 2).mean())
    assert m["text_to_audio/R@10"] == pytest.approx((r <= 10).mean())
    assert m["text_to_audio/mAP@10"] == pytest.approx(np.where(r <= 10, 1 / r, 0).mean())
    assert set(m) == {f"{d}/{k}" for d in ("text_to_audio", "audio_to_text") for k in ("R@1", "R@2", "R@10", "mAP@10")}


def test_map_at_k_caps_relevant_count():
    # one clip with 12 captions all ranked first: AP@10 = 1 (divides by min(12, 10))
    a = torch.ones(1, 3)
    t = torch.ones(12, 3)
    m = retrieval_metrics(a, t, [0] * 12)
    assert m["audio_to_text/mAP@10"] == pytest.approx(1.0)
    # two clips with 3 captions each among 6 captions, cut at K = 4
    S = [[1, 5, 4, 6, 2, 3],
         [6, 5, 4, 3, 2, 1]]
    a, t = _embeddings_for(S)
    m = retrieval_metrics(a, t, [1, 0, 0, 1, 0, 1], map_k=4)
    # clip 0: ranking 3,1,2,5,4,0 -> relevant {1,2,4} at ranks 2,3,5; within top 4: (1/2 + 2/3) / min(3, 4)
    # clip 1: ranking 0,1,2,3,4,5 -> relevant {0,3,5} at ranks 1,4,6; within top 4: (1/1 + 2/4) / 3
    assert m["audio_to_text/mAP@4"] == pytest.approx(((1 / 2 + 2 / 3) / 3 + (1 + 2 / 4) / 3) / 2)


def _reference_retrieval(sim, index, ks, K):
    "A plain-Python reference: ranks by stable sort, AP@K with min(R, K)."
    sim = np.asarray(sim); index = np.asarray(index)
    out = {}
    for name, S, rel_of in (("text_to_audio", sim.T, lambda q: {index[q]}),
                            ("audio_to_text", sim, lambda q: set(np.flatnonzero(index == q)))):
        rs, aps = {k: [] for k in ks}, []
        for q in range(S.shape[0]):
            order = sorted(range(S.shape[1]), key=lambda i: -S[q, i])   # Python's sort is stable
            rel = rel_of(q)
            for k in ks: rs[k].append(any(i in rel for i in order[:k]))
            hits, ap = 0, 0.0
            for pos, i in enumerate(order[:K], start=1):
                if i in rel: hits += 1; ap += hits / pos
            aps.append(ap / min(len(rel), K))
        out.update({f"{name}/R@{k}": np.mean(v) for k, v in rs.items()})
        out[f"{name}/mAP@{K}"] = np.mean(aps)
    return out


def test_retrieval_matches_reference_on_random_embeddings():
    g = torch.Generator().manual_seed(3)
    n_audio = 20
    index = torch.cat([torch.arange(n_audio), torch.randint(0, n_audio, (37,), generator=g)])
    audio = torch.randn(n_audio, 8, generator=g, dtype=torch.float64)
    text = audio[index] + 1.5 * torch.randn(len(index), 8, generator=g, dtype=torch.float64)
    m = retrieval_metrics(audio, text, index, ks=(1, 5, 10))
    sim = (F.normalize(audio, dim=-1) @ F.normalize(text, dim=-1).T).numpy()
    ref = _reference_retrieval(sim, index.numpy(), (1, 5, 10), 10)
    assert set(m) == set(ref)
    for k in m:
        assert m[k] == pytest.approx(ref[k], abs=1e-12), k


def test_retrieval_errors():
    a, t = torch.randn(3, 4), torch.randn(5, 4)
    with pytest.raises(ValueError, match="3 clips and 5 captions; pass text_to_audio_index"):
        retrieval_metrics(a, t)
    with pytest.raises(ValueError, match=r"text_to_audio_index has shape \(4,\); expected \(5,\)"):
        retrieval_metrics(a, t, [0, 1, 2, 0])
    with pytest.raises(ValueError, match="holds clip 3, outside 0..2"):
        retrieval_metrics(a, t, [0, 1, 2, 3, 0])
    with pytest.raises(ValueError, match=r"clips \[2\] have no caption"):
        retrieval_metrics(a, t, [0, 1, 1, 0, 0])
    with pytest.raises(ValueError, match="integer clip indices"):
        retrieval_metrics(a, t, [0.0, 1.0, 2.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="embedding sizes differ"):
        retrieval_metrics(a, torch.randn(3, 5))


def test_zero_shot_score():
    assert zero_shot_score({"ESC50": 0.8, "FSD50K": 0.3, "US8K": 0.7}) == pytest.approx(0.6)
    assert zero_shot_score({"a": torch.tensor(0.5), "b": np.float32(0.25)}) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="non-empty"):
        zero_shot_score({})
    with pytest.raises(ValueError, match="task 'b'"):
        zero_shot_score({"a": 0.5, "b": "high"})
    with pytest.raises(ValueError, match="task 'c'"):
        zero_shot_score({"c": float("inf")})


# ---------------------------------------------------------------- whole datasets
def test_evaluate_zero_shot_classlabel_dataset():
    from datasets import ClassLabel
    freqs = [280, 1250, 3900, 320, 1100, 4200, 300]
    ds = tone_dataset(freqs, label=[0, 1, 2, 0, 1, 2, 1]).cast_column("label", ClassLabel(names=["dog", "rain", "siren"]))
    m = FakeModel()
    res = evaluate_zero_shot(m, ds, batch_size=2)
    assert res["labels"] == ["dog", "rain", "siren"]
    assert res["accuracy"] == pytest.approx(6 / 7)                    # the last clip (300 Hz) is labelled rain
    np.testing.assert_array_equal(res["confusion"], [[2, 0, 0], [1, 2, 0], [0, 0, 2]])
    assert res["probabilities"].shape == (7, 3)
    np.testing.assert_array_equal(res["targets"], [0, 1, 2, 0, 1, 2, 1])
    # the audio column's {"bytes", "path"} dicts reach the model unchanged, in order
    seen = [item for call in m.audio_calls for item in call[0]]
    assert [it["path"] for it in seen] == [f"clip_{i}.wav" for i in range(7)]
    assert seen[3]["bytes"] == wav_bytes(320)
    assert all(call[1] == 2 and call[2] == {} for call in m.audio_calls)   # no sample_rate unless given
    evaluate_zero_shot(m, ds, sample_rate=SR)
    assert m.audio_calls[-1][2] == {"sample_rate": SR}
    # the prompts used the default template
    assert "this is a sound of dog" in m.text_calls[0][0]


def test_evaluate_zero_shot_string_and_multilabel():
    ds = tone_dataset([290, 1210, 3950], label=["dog", "rain", "siren"])
    m = FakeModel()
    res = evaluate_zero_shot(m, ds)                                  # labels from the strings, sorted
    assert res["labels"] == ["dog", "rain", "siren"] and res["accuracy"] == 1.0
    res = evaluate_zero_shot(m, ds, labels=["siren", "rain", "dog"])   # order given by the user
    np.testing.assert_array_equal(res["targets"], [2, 1, 0])
    assert res["accuracy"] == 1.0
    dm = tone_dataset([290, 1210, 3950, 300], tags=[["dog"], ["rain", "dog"], ["siren"], ["dog", "siren"]])
    res = evaluate_zero_shot(m, dm, labels=["dog", "rain", "siren"], label_column="tags")
    np.testing.assert_array_equal(res["targets"], [[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1]])
    expected = mean_average_precision(res["targets"], res["probabilities"])
    assert res["mAP"] == pytest.approx(expected) and 0 < res["mAP"] <= 1
    assert "accuracy" not in res


def test_evaluate_zero_shot_errors():
    ds = tone_dataset([290, 1210], label=["dog", "cat"])
    m = FakeModel()
    with pytest.raises(ValueError, match="row 1 has label 'cat', which is not one of labels"):
        evaluate_zero_shot(m, ds, labels=["dog", "rain"])
    with pytest.raises(ValueError, match="no column 'category'"):
        evaluate_zero_shot(m, ds, label_column="category")
    di = tone_dataset([290, 1210], label=[0, 1])
    with pytest.raises(ValueError, match="class indices without names; pass labels"):
        evaluate_zero_shot(m, di)
    with pytest.raises(ValueError, match=r"row 1 has label 1; expected a class name or an index in 0..0"):
        evaluate_zero_shot(m, di, labels=["dog"])


def test_evaluate_retrieval():
    caps = [["a dog barks", "dog"], "rain falls", ["siren wails", "a siren", "siren again"]]
    ds = tone_dataset([300, 1200, 4000], caption=[c if isinstance(c, list) else [c] for c in caps])
    m = FakeModel()
    res = evaluate_retrieval(m, ds, batch_size=2)
    assert res["captions"] == ["a dog barks", "dog", "rain falls", "siren wails", "a siren", "siren again"]
    assert res["text_to_audio_index"].tolist() == [0, 0, 1, 2, 2, 2]
    assert res["similarity"].shape == (3, 6)
    assert res["audio_to_text/R@1"] == 1.0 and res["text_to_audio/R@1"] == 1.0
    # agrees with retrieval_metrics on the same embeddings
    direct = retrieval_metrics(m.embed_audio([ds[i]["audio"] for i in range(3)]), m.embed_text(res["captions"]),
                               res["text_to_audio_index"])
    for k, v in direct.items():
        assert res[k] == pytest.approx(v)
    # plain string captions work too
    ds1 = tone_dataset([300, 1200], caption=["dog", "rain"])
    assert evaluate_retrieval(m, ds1)["text_to_audio/mAP@10"] == 1.0
    bad = tone_dataset([300, 1200], caption=[["dog"], []])
    with pytest.raises(ValueError, match="row 1 of column 'caption'"):
        evaluate_retrieval(m, bad)


# ---------------------------------------------------------------- pictures
def test_plot_similarity_and_confusion():
    sim = np.arange(12, dtype=float).reshape(3, 4)
    fig = plot_similarity(sim, [0, 1, 2, 2], audio_names=["a", "b", "c"], text_names=list("wxyz"))
    assert isinstance(fig, go.Figure)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), sim)
    assert list(fig.data[1].x) == [0, 1, 2, 3] and list(fig.data[1].y) == [0, 1, 2, 2]
    assert list(fig.layout.yaxis.ticktext) == ["a", "b", "c"]
    fig = plot_similarity(torch.eye(3))                               # square: diagonal marked
    assert list(fig.data[1].y) == [0, 1, 2]
    with pytest.raises(ValueError, match="2 audio_names for 3"):
        plot_similarity(sim, [0, 1, 2, 2], audio_names=["a", "b"])
    cm = np.array([[3, 1], [0, 4]])
    fig = plot_confusion(cm, ["dog", "rain"], normalize=True)
    assert isinstance(fig, go.Figure)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), [[0.75, 0.25], [0.0, 1.0]])
    assert list(fig.data[0].x) == ["dog", "rain"]
    with pytest.raises(ValueError, match="square"):
        plot_confusion(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="3 labels for a"):
        plot_confusion(cm, ["a", "b", "c"])


# ---------------------------------------------------------------- long recordings: the window options reach embed_audio
def test_audio_options_pass_only_what_was_given_and_reach_embed_audio():
    from clapbook.evaluate import audio_options
    assert audio_options() == {}
    assert audio_options("crop", hop_seconds=1.5, sample_rate=8000) == {"long_audio": "crop", "hop_seconds": 1.5, "sample_rate": 8000}
    fake = FakeModel()
    zero_shot_classify(fake, [{"bytes": wav_bytes(300), "path": "a.wav"}], ["dog", "rain"])
    assert fake.audio_calls[-1][2] == {}                      # a model without the options still works
    zero_shot_classify(fake, [{"bytes": wav_bytes(300), "path": "a.wav"}], ["dog", "rain"], long_audio="crop", window_seconds=1.0)
    assert fake.audio_calls[-1][2] == {"long_audio": "crop", "window_seconds": 1.0}
    from datasets import Dataset
    ds = Dataset.from_dict({"audio": [{"bytes": wav_bytes(300), "path": "a.wav"}], "label": ["dog"], "caption": ["dog"]})
    evaluate_zero_shot(fake, ds, labels=["dog", "rain"], hop_seconds=0.5)
    assert fake.audio_calls[-1][2] == {"hop_seconds": 0.5}
    evaluate_retrieval(fake, ds, long_audio="windows")
    assert fake.audio_calls[-1][2] == {"long_audio": "windows"}


@pytest.fixture(scope="module")
def tiny_clap():
    from clapbook.model import CLAP, CLAP_PRESETS
    torch.manual_seed(0)
    return CLAP(CLAP_PRESETS["tiny"])


def test_zero_shot_on_60_s_clips_with_windows_and_with_the_crop(tiny_clap):
    "A real CLAP: an event at 5 s of a 60 s clip changes nothing under the crop and changes the scores under the windows."
    g = torch.Generator().manual_seed(0)
    floor = 0.01 * torch.randn(60 * SR, generator=g)
    event = floor.clone(); event[5 * SR:6 * SR] += 0.5 * torch.sin(2 * math.pi * 3520 * torch.arange(SR) / SR)
    labels = ["a whistle", "silence", "rain"]
    crop = zero_shot_classify(tiny_clap, [floor, event], labels, long_audio="crop")
    assert torch.equal(crop[0], crop[1])
    win = zero_shot_classify(tiny_clap, [floor, event], labels)
    assert not torch.equal(win[0], win[1])
    emb = tiny_clap.embed_audio([event], window_seconds=1.0, hop_seconds=0.5)
    logits = zero_shot_logits(emb, class_text_embeddings(tiny_clap, labels), float(tiny_clap.logit_scale))
    torch.testing.assert_close(zero_shot_classify(tiny_clap, [event], labels, window_seconds=1.0, hop_seconds=0.5),
                               zero_shot_probabilities(logits), atol=1e-6, rtol=0)
