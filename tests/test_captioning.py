"Tests for clapbook.captioning (chapter 15): BLEU and CIDEr-D by hand, the captioner, saving, `clapbook caption`."
import json
import math

import pytest
import torch

from clapbook.captioning import (Captioner, bleu, caption_tokens, cider_d, evaluate_captions, load_captioner,
                                 save_captioner, train_captioner)


def test_tokens():
    assert caption_tokens("A loud, high-pitched bell rings twice.") == ["a", "loud", "high-pitched", "bell", "rings", "twice"]
    with pytest.raises(TypeError): caption_tokens(None)


def test_bleu_by_hand():
    # p1 = 3/4 ("a", "dog", "barks" of "a dog barks now"), p2 = 2/3; the candidate is longer than its reference: BP = 1
    b = bleu(["a dog barks now"], ["a dog barks"])
    assert b["BLEU-1"] == pytest.approx(3 / 4) and b["BLEU-2"] == pytest.approx(math.sqrt(3 / 4 * 2 / 3))
    with pytest.raises(ValueError, match="2 candidates but 1"): bleu(["a", "b"], [["a"]])
    with pytest.raises(TypeError, match="one str"): bleu("a dog", ["a dog"])


def test_cider_d_idf_clipping_and_length_penalty():
    refs = [["a bell rings"], ["a siren wails"], ["a bell rings twice"]]
    # a word in every clip's references ("a") has weight 0: a candidate of only that word scores 0
    assert cider_d(["a", "a", "a"], refs) == 0.0
    # repeating a rare word does not raise the score (clipping): "bell bell bell" <= "bell"
    s1 = cider_d(["bell", "siren", "bell"], refs, per_clip=True)[1][0]
    s3 = cider_d(["bell bell bell", "siren", "bell"], refs, per_clip=True)[1][0]
    assert s3 <= s1 + 1e-12
    # with sigma -> infinity the length penalty is 1; with a small sigma, a length mismatch costs more
    far = cider_d(["a bell rings", "a siren wails", "a bell rings"], refs, per_clip=True, sigma=1.0)[1][2]
    near = cider_d(["a bell rings", "a siren wails", "a bell rings"], refs, per_clip=True, sigma=1e6)[1][2]
    assert far < near
    # a perfect caption with distinct words in each clip: 10 * (orders with n-grams) / 4, every n-gram rare
    assert cider_d(["bell rings", "siren wails"], [["bell rings"], ["siren wails"]]) == pytest.approx(10 * 2 / 4)


def test_metrics_agree_with_a_second_count_on_many_references():
    # BLEU-1 with two references per clip, counted directly: clip counts at the max over one reference
    cands = ["a bell a bell", "rain falls"]
    refs = [["a bell", "a bell rings a bell"], ["heavy rain falls", "rain"]]
    match = min(2, 2) + min(2, 2) + 1 + 1          # a x2, bell x2 (max in ref 2), rain, falls
    # closest reference lengths: clip 1 (len 4): ref lengths 2 and 5 -> 5 (|1| < |2|); clip 2 (len 2): 3 and 1 -> tie, shorter 1
    bp = 1.0 if 6 > 6 else math.exp(1 - 6 / 6)
    assert bleu(cands, refs)["BLEU-1"] == pytest.approx(bp * match / 6)


@pytest.fixture(scope="module")
def clap():
    from clapbook.model import CLAP, CLAP_PRESETS
    torch.manual_seed(0)
    return CLAP(CLAP_PRESETS["tiny-gpt2"])


@pytest.fixture(scope="module")
def clips():
    from clapbook.benchmark import _corpus
    return _corpus("soundworld", 48, 0)


def test_captioner_trains_only_the_mapper_by_default(clap):
    cap = Captioner(clap, prefix_length=2)
    trainable = {n.split(".")[1] for n, p in cap.named_parameters() if p.requires_grad}
    assert trainable == {"mapper"}
    cap.train()
    assert not cap.clap.training and not cap.lm.decoder.training and cap.lm.mapper.training
    both = Captioner(clap, prefix_length=2, train_decoder=True)
    assert {n.split(".")[1] for n, p in both.named_parameters() if p.requires_grad} == {"mapper", "decoder"}


def test_caption_greedy_equals_beam_one_and_training_runs(clap, clips):
    cap = Captioner(clap, prefix_length=2, seed=0)
    emb = cap.embed(list(clips["test"]["audio"]))
    assert emb.shape == (len(clips["test"]), clap.config.joint_dim)
    assert cap.caption_embeddings(emb, beam_width=1, max_tokens=4) == \
        [cap.lm.tokenizer.decode(x).strip() for x in __import__("clapbook.pretraining", fromlist=["beam_decode"]).beam_decode(cap.lm, emb, beam_width=1, max_tokens=4)]
    hist = train_captioner(cap, clips["train"], steps=3, batch_size=8)
    assert len(hist) == 1 and hist[0]["step"] == 3
    ev = evaluate_captions(cap, clips["test"], embeddings=emb)
    assert set(ev) >= {"BLEU-1", "BLEU-4", "CIDEr-D", "captions", "references"} and len(ev["captions"]) == len(emb)
    with pytest.raises(ValueError, match="no column 'text'"): train_captioner(cap, clips["train"], caption_column="text")


def test_save_load_and_cli(clap, clips, tmp_path, capsys):
    from clapbook.audio import load_audio, save_audio
    from clapbook.cli import main
    cap = Captioner(clap, prefix_length=2, seed=1)
    folder = save_captioner(cap, tmp_path / "cap")
    again = load_captioner(folder)
    emb = cap.embed(list(clips["test"]["audio"])[:3])
    assert again.caption_embeddings(emb, max_tokens=5) == cap.caption_embeddings(emb, max_tokens=5)
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))          # no pickle
    with pytest.raises(FileNotFoundError, match="not a captioner folder"): load_captioner(tmp_path)
    wav = save_audio(tmp_path / "clip.wav", load_audio(clips["test"][0]["audio"], 16000), 16000)
    capsys.readouterr()
    main(["caption", "--checkpoint", str(folder), "--json", "--max-tokens", "5", str(wav)])
    out = json.loads(capsys.readouterr().out)
    assert out == {str(wav): cap.caption([str(wav)], max_tokens=5)[0]}
    with pytest.raises(SystemExit, match="missing.wav"):
        main(["caption", "--checkpoint", str(folder), str(tmp_path / "missing.wav")])
