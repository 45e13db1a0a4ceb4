"Tests for clapbook.composed (chapter 11): the a2t module, pseudo-token positions and masks, composition, gradient routing."

import pytest
import torch
from torch import nn

from clapbook.composed import (A2T, A2T_PROMPT, MixPairs, add_a2t, collate_mix, compose_text_inputs,
                               composed_loss, composed_loss_terms, concatenate_loss, frozen_call, gradient_norms,
                               insert_token, nearest_tokens, pseudo_text_inputs)
from clapbook.model import CLAP, CLAP_PRESETS
from clapbook.text import TextEncoder, TextEncoderConfig
from clapbook.train import TrainConfig, train

ENCODERS = [("gpt2", None), ("bert", "cls"), ("bert", "mean")]
CAPS = ["a dog barks", "rain falls on a tin roof while thunder rolls far away", "a bell rings twice"]


@pytest.fixture(scope="module")
def encoders():
    return {(f, p): TextEncoder.from_config(TextEncoderConfig(f, "tiny", p), seed=0) for f, p in ENCODERS}


@pytest.fixture(scope="module")
def gpt2_clap():
    torch.manual_seed(0)
    m = CLAP(CLAP_PRESETS["tiny-gpt2"]); add_a2t(m)
    return m


@pytest.fixture(scope="module")
def minilm_clap():
    torch.manual_seed(0)
    m = CLAP(CLAP_PRESETS["tiny"]); add_a2t(m)
    return m


def test_a2t_shapes_and_layers():
    a2t = A2T(joint_dim=64, token_dim=96, dropout=0.2)
    assert a2t(torch.randn(7, 64)).shape == (7, 96)
    assert len(a2t.layers) == 2
    for layer in a2t.layers:
        assert [type(m) for m in layer] == [nn.Linear, nn.Dropout, nn.ReLU]
        assert (layer[0].in_features, layer[0].out_features) == (64, 64)
    assert (a2t.out.in_features, a2t.out.out_features) == (64, 96)
    with pytest.raises(ValueError, match=r"\(batch, 64\)"): a2t(torch.randn(7, 32))
    with pytest.raises(ValueError, match="dropout"): A2T(64, 96, dropout=1.0)


def test_add_a2t_sizes_from_model(gpt2_clap, minilm_clap):
    assert (gpt2_clap.a2t.joint_dim, gpt2_clap.a2t.token_dim) == (256, 128)
    assert (minilm_clap.a2t.joint_dim, minilm_clap.a2t.token_dim) == (256, 384)
    m1, m2 = CLAP(CLAP_PRESETS["tiny-gpt2"]), CLAP(CLAP_PRESETS["tiny-gpt2"])
    assert torch.equal(add_a2t(m1, seed=3).out.weight, add_a2t(m2, seed=3).out.weight)   # seeded, not the global RNG


def test_insert_token_positions_and_mask():
    ids = torch.tensor([[10, 11, 99, 0, 0], [20, 21, 22, 23, 99], [30, 99, 0, 0, 0]])
    mask = (ids != 0).long()
    out, new_mask = insert_token(ids[..., None].float(), mask, torch.full((3, 1), -1.0))
    assert out[..., 0].long().tolist() == [[10, 11, -1, 99, 0, 0], [20, 21, 22, 23, -1, 99], [30, -1, 99, 0, 0, 0]]
    assert new_mask.tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]
    with pytest.raises(ValueError, match="right padding"):
        insert_token(ids[..., None].float(), torch.tensor([[0, 1, 1, 0, 0]] * 3), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="token"):
        insert_token(ids[..., None].float(), mask, torch.zeros(2, 1))


@pytest.mark.parametrize("family,pooling", ENCODERS)
def test_padding_does_not_change_a_sample(encoders, family, pooling):
    te = encoders[(family, pooling)]
    tok = te.tokenize(CAPS)
    torch.manual_seed(0); pseudo = torch.randn(len(CAPS), te.hidden_size)
    with torch.no_grad():
        batch = te(**compose_text_inputs(te, tok["input_ids"], tok["attention_mask"], pseudo))
        for i in range(len(CAPS)):
            n = int(tok["attention_mask"][i].sum())
            alone = te(**compose_text_inputs(te, tok["input_ids"][i:i + 1, :n], tok["attention_mask"][i:i + 1, :n], pseudo[i:i + 1]))
            torch.testing.assert_close(batch[i], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family,pooling", ENCODERS)
def test_pseudo_text_layout(encoders, family, pooling):
    te = encoders[(family, pooling)]
    token = torch.randn(4, te.hidden_size)
    p = pseudo_text_inputs(te, token)
    prompt = te.tokenize([A2T_PROMPT])["input_ids"][0]
    n = len(prompt)
    assert p["inputs_embeds"].shape == (4, n + 1, te.hidden_size) and p["attention_mask"].all()
    table = te.get_input_embeddings().weight
    torch.testing.assert_close(p["inputs_embeds"][:, n - 1], token)                        # before EOT / [SEP]
    torch.testing.assert_close(p["inputs_embeds"][:, n], table[te.eot_token_id].expand(4, -1))
    torch.testing.assert_close(p["inputs_embeds"][:, :n - 1], table[prompt[:-1]].expand(4, -1, -1))


def test_compose_text_needs_end_token(encoders):
    te = encoders[("gpt2", None)]
    ids = torch.tensor(te.tokenizer(["a dog barks"], add_special_tokens=False)["input_ids"])   # no EOT
    with pytest.raises(ValueError, match="end-of-text"):
        compose_text_inputs(te, ids, torch.ones_like(ids), torch.zeros(1, te.hidden_size))


def test_frozen_call_passes_gradient_to_inputs_only():
    lin = nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    frozen_call(lin, x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and lin.weight.grad is None


def _terms(model):
    torch.manual_seed(1)
    wave, unl = torch.randn(4, 32000) * 0.1, torch.randn(4, 32000) * 0.1
    tok = model.tokenize(["a bell rings twice", "rain falls", "a dog barks loudly far away", "an engine runs"])
    model.train()
    return composed_loss_terms(model, wave, tok["input_ids"], tok["attention_mask"], unl)


@pytest.mark.parametrize("name", ["gpt2_clap", "minilm_clap"])
def test_gradient_routing_per_term(request, name):
    "L_a2t trains only a2t; L_InfoNCE and L_composed train the CLAP parts, never a2t."
    model = request.getfixturevalue(name)
    terms = _terms(model)
    torch.testing.assert_close(terms["loss"], terms["infonce"] + terms["a2t"] + terms["composed"])
    g = {k: gradient_norms(model, terms[k]) for k in ("infonce", "a2t", "composed")}
    assert g["a2t"]["a2t"] > 0
    assert all(v == 0 for part, v in g["a2t"].items() if part != "a2t")
    for term in ("infonce", "composed"):
        assert g[term]["a2t"] == 0
        for part in ("audio_encoder", "audio_projection", "text_projection", "log_logit_scale"): assert g[term][part] > 0
        if name == "gpt2_clap": assert g[term]["text_encoder"] > 0          # trainable text tower
        else: assert g[term]["text_encoder"] == 0                           # frozen MiniLM


def test_frozen_text_cache_not_used_for_inputs_embeds(minilm_clap):
    "The frozen tower's feature cache serves token ids only: a2t gets its gradient through MiniLM."
    minilm_clap.clear_text_cache()
    terms = _terms(minilm_clap)
    assert len(minilm_clap.text_cache) == 4                 # only the 4 labeled captions were cached
    emb = pseudo_text_inputs(minilm_clap.text_encoder, terms["token"])
    t = minilm_clap.encode_text(**emb)
    probe = torch.randn_like(t)                       # not t.sum(): the projection ends in a LayerNorm, whose sum is constant
    (g,) = torch.autograd.grad((t * probe).sum(), [terms["token"]], retain_graph=True)
    assert g.abs().sum() > 0
    assert len(minilm_clap.text_cache) == 4


def _tiny_data():
    from datasets import Dataset, Audio
    import numpy as np
    from clapbook.audio import audio_to_bytes
    rng = np.random.default_rng(0)
    clip = lambda: {"bytes": audio_to_bytes(rng.standard_normal(16000 * 2).astype("float32") * 0.1, 16000), "path": None}
    lab = Dataset.from_dict({"audio": [clip() for _ in range(8)], "caption": [f"sound number {i}" for i in range(8)]})
    par = Dataset.from_dict({"audio": [clip() for _ in range(5)], "caption": [f"partner {i}" for i in range(5)]})
    cast = lambda d: d.cast_column("audio", Audio(decode=False))
    return cast(lab), cast(par)


def test_mixpairs_items_and_determinism():
    lab, par = _tiny_data()
    unl = par.select_columns(["audio"])
    mix = MixPairs(lab, unl, 16000, 2.0, seed=0)
    item = mix[2]
    assert sorted(item) == ["caption", "partner", "wave"] and item["wave"].shape == item["partner"].shape == (32000,)
    again = MixPairs(lab, unl, 16000, 2.0, seed=0)[2]
    assert torch.equal(item["partner"], again["partner"]) and torch.equal(item["wave"], again["wave"])
    batch = collate_mix([mix[i] for i in range(3)])
    assert batch["wave"].shape == batch["partner"].shape == (3, 32000) and batch["caption"] == lab["caption"][:3]
    labeled = MixPairs(lab, par, 16000, 2.0, partner_text_column="caption")
    assert labeled[0]["partner_caption"] == par["caption"][labeled.partner_index(0)]
    with pytest.raises(ValueError, match="no column 'caption'"): MixPairs(lab, unl, 16000, 2.0, partner_text_column="caption")
    with pytest.raises(ValueError, match="partner_caption"): concatenate_loss(None, batch)


def test_train_with_composed_loss_is_deterministic_and_trains_a2t():
    lab, par = _tiny_data()
    mix = MixPairs(lab, par.select_columns(["audio"]), 16000, 2.0, seed=0)
    cfg = TrainConfig(max_steps=2, batch_size=4, progress=False, lr=1e-3)
    def run():
        torch.manual_seed(0); m = CLAP(CLAP_PRESETS["tiny-gpt2"]); add_a2t(m)
        before = m.a2t.out.weight.detach().clone()
        train(m, mix, cfg, loss_fn=composed_loss, collate_fn=collate_mix)
        return m, before
    m1, before = run()
    m2, _ = run()
    assert not torch.equal(m1.a2t.out.weight, before)                    # a2t was optimised
    assert all(torch.equal(p, q) for p, q in zip(m1.state_dict().values(), m2.state_dict().values()))
    mixl = MixPairs(lab, par, 16000, 2.0, partner_text_column="caption")
    loss = concatenate_loss(m1, collate_mix([mixl[i] for i in range(4)]))
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_nearest_tokens_finds_a_real_word(minilm_clap):
    te = minilm_clap.text_encoder
    ids = te.tokenizer.convert_tokens_to_ids(["bell", "rain"])
    near = nearest_tokens(te, te.get_input_embeddings().weight[ids], k=3)
    assert [r[0][0] for r in near] == ["bell", "rain"] and abs(near[0][0][1] - 1.0) < 1e-5
    assert all(not w.startswith("[") for r in nearest_tokens(te, torch.randn(4, 384), k=10) for w, _ in r)
