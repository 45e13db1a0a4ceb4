"Tests for clapbook.pretraining (chapter 14): the mapper, eq. (5)'s inputs and masking, decoding, multi-task pretraining."
import pytest
import torch

from clapbook.pretraining import (AudioTaskModel, Mapper, PrefixLM, beam_decode, build_inputs, fit_prefix_lm,
                                  greedy_decode, prefix_lm_loss, pretrain_audio_encoder, task_examples)


@pytest.fixture(scope="module")
def lm():
    return PrefixLM(32, "tiny", prefix_length=3, seed=0)


def test_mapper_shapes_and_errors():
    m = Mapper(32, 16, prefix_length=5)
    assert m(torch.randn(4, 32)).shape == (4, 5, 16)
    with pytest.raises(ValueError, match=r"\(batch, 32\)"): m(torch.randn(4, 31))
    with pytest.raises(ValueError, match=r"\(batch, 32\)"): m(torch.randn(32))
    with pytest.raises(ValueError, match=">= 1"): Mapper(32, 16, prefix_length=0)


def test_inputs_layout_and_masking(lm):
    emb = torch.randn(2, 32)
    e, mask, labels = build_inputs(lm, emb, ["a dog barks", "rain"], ["caption:", ""])
    q = lm.token_ids(["caption:", ""]); a = lm.token_ids(["a dog barks", "rain"])
    lengths = [3 + len(q[i]) + len(a[i]) + 1 for i in range(2)]
    assert e.shape == (2, max(lengths), lm.decoder.config.n_embd) and mask.sum(1).tolist() == lengths
    for i in range(2):
        start = 3 + len(q[i])
        assert (labels[i, :start] == -100).all()                                    # prefix and question: no loss
        assert labels[i, start:lengths[i]].tolist() == a[i] + [lm.eos]              # the answer and <|endoftext|>
        assert (labels[i, lengths[i]:] == -100).all() and (mask[i, lengths[i]:] == 0).all()   # padding
        assert torch.equal(e[i, :3], lm.mapper(emb)[i])                             # the prefix is the mapper's output
        assert (e[i, lengths[i]:] == 0).all()
    with pytest.raises(ValueError, match="at least one word"): build_inputs(lm, emb, ["", "x"])
    with pytest.raises(ValueError, match="2 audio embeddings"): build_inputs(lm, emb, ["x"])


def test_loss_ignores_padding(lm):
    emb = torch.randn(2, 32)
    a = ["a dog barks loudly three times", "rain"]
    n = [len(x) + 1 for x in lm.token_ids(a)]
    both = prefix_lm_loss(lm, emb, a)
    one = [prefix_lm_loss(lm, emb[i:i + 1], [a[i]]) for i in range(2)]
    assert both.item() == pytest.approx(((n[0] * one[0] + n[1] * one[1]) / sum(n)).item(), rel=1e-5)


def test_greedy_equals_beam_of_width_one_without_questions(lm):
    # chapter 14 checks greedy == beam of width 1, and a batch == each row alone, with questions; here without any
    torch.manual_seed(3)
    emb = torch.randn(3, 32)
    assert greedy_decode(lm, emb, None, max_tokens=3) == beam_decode(lm, emb, None, beam_width=1, max_tokens=3)
    with pytest.raises(ValueError, match="beam_width"): beam_decode(lm, emb, beam_width=0)




def test_fit_is_deterministic():
    # chapter 14 checks that fitting memorises its answers; here that the same seed gives the same weights and losses
    emb = torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    runs = []
    for _ in range(2):
        lm = PrefixLM(32, "tiny", prefix_length=2, seed=0)
        hist = fit_prefix_lm(lm, emb, ["bell", "siren", "rain", "wind"], steps=3, batch_size=2, lr=3e-3, seed=0, log_every=1)
        runs.append((hist, lm.mapper.state_dict()))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) == 3
    assert all(torch.equal(v, runs[1][1][k]) for k, v in runs[0][1].items())


def test_only_the_mapper_trains_when_the_decoder_is_frozen():
    lm = PrefixLM(32, "tiny", prefix_length=2, train_decoder=False, seed=0)
    before = {k: v.clone() for k, v in lm.decoder.state_dict().items()}
    m_before = {k: v.clone() for k, v in lm.mapper.state_dict().items()}
    fit_prefix_lm(lm, torch.randn(4, 32), ["a", "b", "c", "d"], steps=2, batch_size=4)
    assert all(torch.equal(before[k], v) for k, v in lm.decoder.state_dict().items())
    assert any(not torch.equal(m_before[k], v) for k, v in lm.mapper.state_dict().items())
    lm.train(); assert not lm.decoder.training and lm.mapper.training


def test_task_examples_from_metadata():
    from clapbook.benchmark import _corpus
    sw = _corpus("soundworld", 48, 0)["train"]
    ins = _corpus("instruments", 48, 0)["train"]
    ex = task_examples(sw, "soundworld")
    assert len(ex) == len(sw) and ex[0][0] == ("caption:", sw[0]["caption"]) and ex[0][1] == ("what sound is this?", sw[0]["label"])
    ei = task_examples(ins, "instruments")
    assert ("which instrument family?", ins[0]["family"]) in ei[0]
    qs = {q for e in ei for q, _ in e}
    assert {"caption:", "what instrument is this?", "which instrument family?"} <= qs
    with pytest.raises(ValueError, match="corpus"): task_examples(sw, "scenes")


def test_pretrain_heads_and_errors():
    from clapbook.model import CLAP_PRESETS
    waves = torch.randn(6, 16000) * 0.1
    mt = AudioTaskModel(CLAP_PRESETS["tiny"], head="text", prefix_length=2)
    ex = [[("what sound is this?", "bell")], [("caption:", "a loud bell")]] * 3
    h = pretrain_audio_encoder(mt, waves, ex, steps=2, batch_size=3, log_every=1)
    assert len(h) == 2 and all(r["loss"] > 0 for r in h)
    cls = AudioTaskModel(CLAP_PRESETS["tiny"], head="class", num_classes=3)
    pretrain_audio_encoder(cls, waves, classes=[0, 1, 2, 0, 1, 2], steps=1, batch_size=3)
    with pytest.raises(ValueError, match="needs examples"): pretrain_audio_encoder(mt, waves, classes=[0] * 6, steps=1)
    with pytest.raises(ValueError, match="6 clips but 2"): pretrain_audio_encoder(cls, waves, classes=[0, 1], steps=1)
    with pytest.raises(ValueError, match="num_classes"): AudioTaskModel(CLAP_PRESETS["tiny"], head="class")
    # the encoder's weights fit a CLAP of the same config
    from clapbook.model import CLAP
    CLAP(CLAP_PRESETS["tiny"]).audio_encoder.load_state_dict(mt.audio_encoder.state_dict())
