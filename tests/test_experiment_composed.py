"Tests for clapbook.experiments.composed: captions of a mixture, the splits, keyed R@1, the arms' texts, claims."

import pytest
import torch

import clapbook.experiments.composed as ex


def test_strip_level_keeps_what_holds_for_a_mixture():
    assert ex.strip_level("a soft piano plays with wind blowing in the background") == "a piano plays"
    assert ex.strip_level("a quiet alarm wails in the wind") == "an alarm wails"
    assert ex.strip_level("rain falls") == "rain falls"


def test_target_splits_distinct_round_robin():
    caps = [f"c{i % 7}" for i in range(40)]
    labels = [f"l{i % 4}" for i in range(40)]
    test, valid, rest = ex.target_splits(caps, labels, 6, 6)
    assert len({caps[i] for i in test}) == 6 and len({caps[i] for i in valid}) == 6
    assert sorted(test + valid + rest) == list(range(40))
    assert len({labels[i] for i in test[:4]}) == 4                     # round-robin: one of each class first
    with pytest.raises(ValueError, match="distinct captions"): ex.target_splits(caps, labels, 8, 1)


class _Fixed(torch.nn.Module):
    "A stand-in model whose audio and text embeddings are given."
    def __init__(self, audio, text):
        super().__init__(); self.a, self.t = audio, text
        self.text_projection = torch.nn.Identity()
    device = torch.device("cpu")
    def eval(self): return self
    def encode_audio(self, wave): return self.a[wave[:, 0].long()]
    def tokenize(self, caps): return {"input_ids": torch.tensor([[int(c)] for c in caps]), "attention_mask": torch.ones(len(caps), 1)}
    def frozen_text_features(self, ids, mask): return self.t[ids[:, 0]]


def test_scores_keyed_r1_forgives_same_key():
    e = torch.eye(4)
    text = e[[1, 0, 2, 3]]                                             # captions 0 and 1 point at each other's clip
    model = _Fixed(e, text)
    wave = torch.arange(4.0)[:, None].repeat(1, 8)
    s = ex.scores(model, wave, ["0", "1", "2", "3"], ["k", "k", "x", "y"])
    assert s["text_to_audio/R@1"] == 50.0 and s["text_to_audio/keyed R@1"] == 100.0
    assert s["audio_to_text/R@1"] == 50.0 and s["audio_to_text/keyed R@1"] == 100.0


def test_claims_need_every_seed():
    runs = [{"method": a, "seed": s, **{k: (12.0 if a == "composed" and s == 0 else 10.0) for k in ex.SCORE_KEYS}}
            for s in (0, 1) for a in ex.ARMS]
    claims = ex.composed_claims(runs)
    assert [c["id"] for c in claims] == list(ex.CLAIMS)
    assert not any(c["holds"] for c in claims)                         # seed 1 ties: a tie is not a win
    assert claims[0]["method_per_seed"] == [12.0, 10.0] and claims[2]["control"] == "mixup"
