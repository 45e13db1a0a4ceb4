"Tests for clapbook.temporal (chapter 09) and the T-CLAP pieces of losses (06) and evaluate (08)."
import math

import numpy as np
import pytest
import torch

from clapbook.evaluate import t_classify
from clapbook.losses import clap_loss, temporal_loss
from clapbook.temporal import (Event, TEMPORAL_CONNECTORS, TemporalMix, collate_temporal, event_bank,
                               event_phrases, is_valid_negative, order_caption, parse_llm_answer,
                               place_events, reversal_similarity, reverse_order_caption, tclap_loss_fn, temporal_example,
                               temporal_set)

SR = 16000


def tone_bank(labels=("bell", "siren", "rain", "thunder"), per_label=3, split="train"):
    "Events whose samples say where they came from: event j of label i is a constant (i + 1) * 10 + j."
    return [Event(l, np.full(int(0.6 * SR), (i + 1) * 10 + j, np.float32) / 100, f"{split}/{l}/{j}")
            for i, l in enumerate(labels) for j in range(per_label)]


@pytest.fixture(scope="module")
def corpus():
    from clapbook.sounds import soundworld
    return soundworld(n=64, seed=0)


# ---- captions and data -------------------------------------------------------------------------
def test_order_caption_after_means_later_first():
    assert order_caption(["bell", "siren"], "followed by") == "a bell followed by a siren"
    with pytest.raises(ValueError, match="does not fit 3 events"):
        order_caption(["bell", "siren", "rain"], "after")


def test_place_events_gaps_and_overlap():
    clip, spans = place_events([np.ones(3, np.float32), np.ones(2, np.float32)], gaps=[2], lead=0, n_samples=8)
    assert clip.tolist() == [1, 1, 1, 0, 0, 1, 1, 0] and spans == [(0, 3), (5, 7)]
    clip, _ = place_events([np.ones(3, np.float32), np.ones(2, np.float32)], gaps=[-1], lead=0, n_samples=5)
    assert clip.tolist() == [1, 1, 2, 1, 0]


@pytest.mark.parametrize("k", [2, 3])
def test_temporal_example_order_labels_and_reversed_negative(k):
    bank = tone_bank()
    events = [bank[0], bank[3], bank[6]][:k]                       # bell, siren, rain
    ex = temporal_example(events, np.random.default_rng(5), SR, 2.0, max_overlap=0.0, max_gap=0.1)
    assert ex["audio"].shape == ex["negative_audio"].shape == (2 * SR,)
    assert ex["labels"] == [e.label for e in events]
    assert [e["label"] for e in ex["events"]] == ex["labels"]
    assert [e["label"] for e in ex["negative_events"]] == ex["labels"][::-1]
    onsets = [e["onset"] for e in ex["events"]]
    assert onsets == sorted(onsets)                                 # events in time order
    for e in ex["events"]:                                          # each segment holds its own event's value
        mid = int((e["onset"] + e["offset"]) / 2 * SR)
        src = next(b for b in bank if b.source == e["source"])
        assert ex["audio"][mid] == pytest.approx(src.wave[0], abs=1e-6)
    for e in ex["negative_events"]:
        mid = int((e["onset"] + e["offset"]) / 2 * SR)
        src = next(b for b in bank if b.source == e["source"])
        assert ex["negative_audio"][mid] == pytest.approx(src.wave[0], abs=1e-6)
    # the negative clip is the positive one with its segments in the reverse order
    pos = [ex["audio"][round(e["onset"] * SR):round(e["offset"] * SR)] for e in ex["events"]]
    neg = [ex["negative_audio"][round(e["onset"] * SR):round(e["offset"] * SR)] for e in ex["negative_events"]]
    for p, n in zip(pos, neg[::-1]): np.testing.assert_array_equal(p, n)
    assert ex["negative_caption"] == order_caption(ex["labels"][::-1], ex["connector"])
    assert ex["negative_caption"] != ex["caption"]


def test_temporal_example_rejects_repeated_labels():
    bank = tone_bank()
    with pytest.raises(ValueError, match="distinct labels"):
        temporal_example([bank[0], bank[1]], np.random.default_rng(0))


def test_temporal_set_deterministic_and_mixes_two_and_three_events():
    bank = tone_bank()
    a, b = temporal_set(bank, 30, seed=3), temporal_set(bank, 30, seed=3)
    assert all(np.array_equal(x["audio"], y["audio"]) and x["caption"] == y["caption"] for x, y in zip(a, b))
    assert temporal_set(bank, 31, seed=3)[29]["caption"] == a[29]["caption"]   # example i does not depend on n
    assert {len(x["labels"]) for x in a} == {2, 3}
    assert all(x["connector"] in TEMPORAL_CONNECTORS[len(x["labels"])] for x in a)
    assert any(x["caption"] != y["caption"] for x, y in zip(a, temporal_set(bank, 30, seed=4)))


def test_no_leakage_between_train_and_test_banks(corpus):
    train_bank = event_bank(corpus["train"], name="soundworld/train")
    test_bank = event_bank(corpus["test"], name="soundworld/test")
    train = temporal_set(train_bank, 40, seed=0)
    test = temporal_set(test_bank, 40, seed=1)
    tr = {e["source"] for x in train for e in x["events"]}
    te = {e["source"] for x in test for e in x["events"] + x["negative_events"]}
    assert tr and te and not tr & te
    # and not just different names: no test event's samples occur among the training events
    train_waves = {e.wave.tobytes() for e in train_bank}
    assert not any(e.wave.tobytes() in train_waves for e in test_bank)


def test_event_bank_cuts_to_the_event_and_checks_columns(corpus):
    bank = event_bank(corpus["train"])
    row = corpus["train"][3]
    ev = row["events"][0]
    assert abs(len(bank[3].wave) / SR - (ev["offset"] - ev["onset"])) < 2e-3 and bank[3].label == row["label"]
    with pytest.raises(ValueError, match="no column 'label'"):
        event_bank(corpus["train"].select_columns(["audio"]))


def test_temporal_mix_ratio_and_epochs():
    from datasets import Dataset
    from clapbook.audio import audio_to_bytes
    ds = Dataset.from_dict({"audio": [{"bytes": audio_to_bytes(np.zeros(2 * SR, np.float32), SR), "path": f"{i}.wav"} for i in range(20)],
                            "caption": [f"caption {i}" for i in range(20)]})
    mix = TemporalMix(ds, tone_bank(), SR, 2.0, pairs_per_triplet=4, seed=0)
    assert len(mix) == 25 and mix.n_triplets == 5
    batch = collate_temporal([mix[i] for i in range(len(mix))])
    assert batch["wave"].shape == (25, 2 * SR) and batch["has_negative"].sum().item() == 5
    assert all(n == "" for n, h in zip(batch["negative_caption"], batch["has_negative"]) if not h)
    e0 = [t["caption"] for t in mix.triplets]
    mix.set_epoch(1); e1 = [t["caption"] for t in mix.triplets]
    mix.set_epoch(0); assert [t["caption"] for t in mix.triplets] == e0 and e1 != e0


# ---- negative captions -------------------------------------------------------------------------
@pytest.mark.parametrize("caption,negative", [
    ("after the bell, a dog barks", "after a dog barks, the bell"),
    ("a dog barks after the bell rings", "the bell rings after a dog barks"),
    ("A dog barks followed by a bell ringing.", "A bell ringing followed by a dog barks."),
    ("a siren wails, then a bell rings, then a dog barks", "a dog barks, then a bell rings, then a siren wails"),
    ("first rain, then thunder, and finally applause", "first applause, then thunder, and finally rain"),
    ("Before the door slams, a man speaks", "Before a man speaks, the door slams"),
    ("a man speaks, and after that a door slams", "a door slams, and after that a man speaks"),
    ("a dog barks while a car passes, then a bell rings", "a bell rings, then a dog barks while a car passes"),
    ("Birds chirp in the distance", None),
    ("a bell rings while it rains", None),
    ("a bell rings after a dog barks, then a car passes", None),
    ("a dog barks then a dog barks", None),
    ("thunder followed by", None),
])
def test_reverse_order_caption_tricky(caption, negative):
    assert reverse_order_caption(caption) == negative


def test_rule_negatives_match_the_templates_for_every_order():
    from itertools import permutations
    for labels in permutations(["bell", "siren", "thunder", "wind"], 3):
        for conn in TEMPORAL_CONNECTORS[3]:
            assert reverse_order_caption(order_caption(labels, conn)) == order_caption(labels[::-1], conn)
        for conn in TEMPORAL_CONNECTORS[2]:
            assert reverse_order_caption(order_caption(labels[:2], conn)) == order_caption(labels[:2][::-1], conn)


def test_event_phrases_structure():
    p = event_phrases("After the bell, a dog barks.")
    assert p == {"prefix": "After ", "phrases": ["the bell", "a dog barks"], "separators": [", "], "end": "."}
    assert event_phrases("no order here") is None


def test_llm_answer_parsing_and_validation():
    assert parse_llm_answer(' "a bell ringing followed by a dog barks"\nCaption: x') == "a bell ringing followed by a dog barks"
    assert parse_llm_answer("Caption: a new example") is None
    assert is_valid_negative("after the rain stops, thunder rumbles", "thunder rumbles, and then the rain stops")
    assert not is_valid_negative("a dog barks then a bell", "a dog barks then a bell")
    assert not is_valid_negative("a dog barks then a bell", "a cat meows then a dog barks")


# ---- the loss and T-Classify --------------------------------------------------------------------
def test_temporal_loss_against_hand_computation():
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]])
    pos = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0]])       # not unit: the loss normalises
    neg = torch.tensor([[0.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    s = 7.0
    cp, cn = [1.0, 0.6, 1.0], [0.0, 0.8, 0.0]
    want = np.mean([-math.log(math.exp(s * p) / (math.exp(s * p) + math.exp(s * n))) for p, n in zip(cp, cn)])
    assert temporal_loss(a, pos, neg, s).item() == pytest.approx(want, rel=1e-6)
    assert temporal_loss(a, pos, neg, torch.tensor(s)).item() == pytest.approx(want, rel=1e-6)
    assert temporal_loss(a, pos, pos, s).item() == pytest.approx(math.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="neg_text_emb"):
        temporal_loss(a, pos, neg[:2], s)


def test_temporal_loss_gradient_pushes_the_negative_away():
    a = torch.tensor([[1.0, 0.0]])
    neg = torch.tensor([[0.8, 0.6]], requires_grad=True)
    temporal_loss(a, torch.tensor([[0.6, 0.8]]), neg, 10.0).backward()
    assert neg.grad[0, 0] > 0                                       # descent lowers the negative's cosine with the clip


def test_t_classify_on_constructed_embeddings():
    g = torch.Generator().manual_seed(0)
    n = 50
    a = torch.randn(n, 8, generator=g)
    right = torch.rand(n, generator=g) < 0.7                        # which examples the "model" gets right
    pos_t = a + 0.1 * torch.randn(n, 8, generator=g)
    other = torch.randn(n, 8, generator=g)
    neg_t = torch.where(right[:, None], other, a)                   # right: negative caption unrelated; wrong: it is the clip
    pos_t = torch.where(right[:, None], pos_t, other)
    neg_a = torch.where(right[:, None], torch.randn(n, 8, generator=g), pos_t)
    r = t_classify(a, pos_t, neg_t, neg_a)
    assert r["text_to_audio"] == pytest.approx(100 * right.double().mean().item())
    assert r["audio_to_text"] == pytest.approx(100 * right.double().mean().item())
    assert r["n_text_to_audio"] == r["n_audio_to_text"] == n


def test_tclap_loss_fn_is_lc_plus_half_lt():
    from clapbook.model import CLAP, CLAP_PRESETS
    torch.manual_seed(0)
    model = CLAP(CLAP_PRESETS["tiny"]).eval()
    bank = tone_bank()
    trip = temporal_set(bank, 2, seed=0)
    items = [(torch.zeros(2 * SR), "a bell rings", None)] + [(torch.from_numpy(t["audio"]), t["caption"], t["negative_caption"]) for t in trip]
    batch = collate_temporal(items)
    with torch.no_grad():
        a, t = model.embed_audio(batch["wave"]), model.embed_text(batch["caption"])
        tn = model.embed_text([x["negative_caption"] for x in trip])
        s = model.logit_scale
        m = batch["has_negative"]
        assert tclap_loss_fn(0.5)(model, batch).item() == pytest.approx((clap_loss(a, t, s) + 0.5 * temporal_loss(a[m], t[m], tn, s)).item(), rel=1e-4)
        assert tclap_loss_fn(0.0)(model, batch).item() == pytest.approx(clap_loss(a, t, s).item(), rel=1e-4)


class _Embedder:
    "A stand-in audio side with a known answer: the embedding is the clip's first 4 samples."
    def embed_audio(self, audio, batch_size=32, sample_rate=None):
        return torch.tensor(np.stack([np.asarray(x)[:4] for x in audio]), dtype=torch.float32)


def test_reversal_similarity_is_the_mean_cosine_of_clip_and_reversed_clip():
    ex = [{"audio": np.array([1, 0, 0, 0, 9], np.float32), "negative_audio": np.array([0, 1, 0, 0, 9], np.float32), "sample_rate": SR},
          {"audio": np.array([1, 1, 0, 0], np.float32), "negative_audio": np.array([1, 1, 0, 0], np.float32), "sample_rate": SR}]
    assert reversal_similarity(_Embedder(), ex) == pytest.approx((0.0 + 1.0) / 2)      # orthogonal, then identical
    ex[0]["negative_audio"] = -ex[0]["audio"]
    assert reversal_similarity(_Embedder(), ex) == pytest.approx((-1.0 + 1.0) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="no examples"):
        reversal_similarity(_Embedder(), [])
