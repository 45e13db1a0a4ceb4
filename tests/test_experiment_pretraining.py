"""Tests for the pretraining experiment's arms and metrics (clapbook.experiments.pretraining): the in-domain decoder,
the text-first stage, the audio-usage gap, the linear probes, the matched-steps control and the claims."""
import pytest
import torch

import clapbook.experiments.pretraining as ex
from clapbook.pretraining import PrefixLM, fit_prefix_lm


def test_in_domain_tokenizer_round_trips_and_refuses_unknown_words():
    tok = ex.InDomainTokenizer(["caption:", "a dog barks twice", "a soft piano note"])
    for text in ("a dog barks twice", "a soft piano note", "caption:"):
        assert tok.decode(tok(text)["input_ids"]) == text
    assert max(i for t in ("a dog barks twice",) for i in tok(t)["input_ids"]) < tok.eos_token_id == len(tok) - 1
    with pytest.raises(KeyError, match="outside the vocabulary"): tok("a cat meows")
    dec, same = ex.in_domain_decoder(tok, seed=0, layers=1, width=32, heads=2)
    assert same is tok and dec.config.vocab_size == len(tok) and dec.config.eos_token_id == tok.eos_token_id


def test_text_decoder_learns_the_answers_then_is_frozen():
    tok = ex.InDomainTokenizer(["what sound is this?", "a dog", "rain"])
    dec = ex.in_domain_decoder(tok, seed=0, layers=1, width=32, heads=2)
    qa = [("what sound is this?", "a dog"), ("what sound is this?", "rain")]
    hist = ex.pretrain_text_decoder(dec, qa, d_audio=8, steps=40, batch_size=8, seed=0, log_every=10)
    assert [h["step"] for h in hist] == [10, 20, 30, 40] and hist[-1]["loss"] < hist[0]["loss"]
    assert not any(p.requires_grad for p in dec[0].parameters()) and not dec[0].training


class _Embedded:
    "An AudioTaskModel stand-in: 'waves' are already embeddings; `lm` is a PrefixLM."
    def __init__(self, lm): self.lm = lm
    def eval(self): self.lm.eval(); return self
    def embed(self, w): return w


def test_audio_usage_gap_is_zero_without_audio_and_positive_when_answers_need_it():
    torch.manual_seed(0)
    emb = torch.randn(8, 16)
    answers = ["bell", "siren", "rain", "wind", "a dog", "thunder", "clock", "birdsong"]
    lm = PrefixLM(16, "tiny", prefix_length=2, seed=0)
    fit_prefix_lm(lm, emb, answers, steps=60, batch_size=8, lr=3e-3, log_every=60)
    examples = [[("caption:", a)] for a in answers]
    gap = ex.audio_usage_gap(_Embedded(lm), emb, examples, seed=0)
    assert gap["gap"] == pytest.approx(gap["shuffled"] - gap["true"]) and gap["gap"] > 0.3    # each clip's own words
    same = ex.audio_usage_gap(_Embedded(lm), torch.zeros(8, 16), examples, seed=0)                 # every prefix identical
    assert same["gap"] == pytest.approx(0.0, abs=1e-5)


def test_linear_probe_finds_what_the_features_hold():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g)
    y = ["hi" if v > 0 else "lo" for v in (x[:, 2] - x[:, 4]).tolist()]
    assert ex.linear_probe(x[:200], y[:200], x[200:], y[200:]) > 95
    noise = ["hi" if v > 0 else "lo" for v in torch.randn(300, generator=g).tolist()]
    assert ex.linear_probe(x[:200], noise[:200], x[200:], noise[200:]) < 75


def test_linear_probes_read_each_probe_on_its_corpus_and_skip_unlabelled_clips():
    g = torch.Generator().manual_seed(1)
    waves = {s: {"soundworld": torch.randn(n, 4, generator=g), "instruments": torch.randn(n, 4, generator=g)}
             for s, n in (("train", 120), ("test", 60))}
    lab = lambda w, col: ["yes" if v > 0 else "no" for v in w[:, col].tolist()]
    probe = {s: {"count": ("soundworld", lab(waves[s]["soundworld"], 0)),
                 "background": ("soundworld", [None] * 10 + lab(waves[s]["soundworld"], 1)[10:]),
                 "register": ("instruments", lab(waves[s]["instruments"], 2)),
                 "loudness": ("instruments", lab(waves[s]["instruments"], 3))} for s in waves}
    out = ex.linear_probes(lambda w: w, {"waves": waves, "probe": probe})
    assert list(out) == list(ex.PROBES) and min(out.values()) > 90


def test_clip_pairs_and_arm_errors():
    assert len(ex.ClipPairs(torch.zeros(3, 10), ["a", "b", "c"])) == 3
    with pytest.raises(ValueError, match="3 clips but 2 captions"): ex.ClipPairs(torch.zeros(3, 10), ["a", "b"])
    with pytest.raises(ValueError, match="choose from"): ex.train_arm("nope", None, {}, [], {}, 0)
    with pytest.raises(ValueError, match="text-pretrained decoder"): ex.train_arm(ex.MULTITASK, None, {}, [], {}, 0)


def test_claims_compare_within_seeds_against_the_matched_control():
    probes = {k: 50.0 for k in ex.PROBES}
    runs = [{"pretraining": p, "seed": s, "score": sc, "probes_random": probes, "probes_clap": probes,
             "probes_pretrained": None if p == ex.SCRATCH else probes, "audio_usage": None}
            for s, scores in ((0, (0.50, 0.52, 0.49, 0.48)), (1, (0.55, 0.56, 0.57, 0.50))) for p, sc in zip(ex.PRETRAININGS, scores)]
    claims = {c["id"]: c for c in ex.pretraining_claims(runs)}
    assert set(claims) == set(ex.CLAIMS)
    assert claims["classification_vs_matched_scratch"]["holds"] and not claims["multitask_vs_matched_scratch"]["holds"]
    assert claims["multitask_vs_matched_scratch"]["method_per_seed"] == pytest.approx([49.0, 57.0])
    assert claims["multitask_vs_caption_only"]["holds"]
