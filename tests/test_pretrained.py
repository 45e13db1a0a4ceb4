"""Chapter 16: loading the three published CLAP families, proved without a network.

Each test builds a small model with random weights in a peer's exact layout (Hugging Face
`ClapModel.save_pretrained`; LAION-CLAP's `.pt` names; msclap 2022 / 2023 `.pth` names, taken
from their published model code), loads it with clapbook, and compares embeddings with a
reference computed by the peer's own code where it is installed (transformers' `ClapModel`,
`ClapFeatureExtractor`, `GPT2Model`, `BertModel`) and by the peer's formulas otherwise.

Tolerance: every embedding (L2-normalised) equals the reference to TOL = 1e-4 (max abs diff).
"""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clapbook.audio import crop_or_pad
from clapbook.model import CLAP
from clapbook import pretrained as P

TOL = 1e-4
TEXTS = ["a dog barks twice", "rain on a tin roof while thunder rolls in the distance", "x"]


def _waves(sr, seconds, seed=0):
    g = np.random.default_rng(seed)
    return [(0.1 * g.standard_normal(int(sr * s))).astype(np.float32) for s in seconds]


@pytest.fixture(scope="module")
def roberta_tok():
    from clapbook.text import load_roberta_tokenizer
    return load_roberta_tokenizer()


@pytest.fixture(scope="module")
def hf_model(roberta_tok):
    "A small random Hugging Face ClapModel (HTS-AT with the published 256 spec size, RoBERTa text)."
    from transformers import ClapConfig, ClapModel
    tok = roberta_tok
    ac = dict(hidden_size=128, spec_size=256, patch_embeds_hidden_size=16, depths=[2, 2, 2, 2],
              num_attention_heads=[1, 2, 4, 8], projection_dim=32, num_mel_bins=64, enable_fusion=False)
    tc = dict(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=1, intermediate_size=128,
              max_position_embeddings=80, projection_dim=32, pad_token_id=tok.pad_token_id,
              bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    torch.manual_seed(0)
    hf = ClapModel(ClapConfig(text_config=tc, audio_config=ac, projection_dim=32)).eval()
    bn = hf.audio_model.audio_encoder.batch_norm                     # non-trivial statistics
    with torch.no_grad():
        bn.running_mean.normal_(-40, 10); bn.running_var.uniform_(50, 200); bn.weight.uniform_(0.5, 1.5); bn.bias.normal_()
        hf.logit_scale_a.fill_(math.log(20.0))
    return hf


@pytest.fixture(scope="module")
def hf_folder(hf_model, roberta_tok, tmp_path_factory):
    from transformers import ClapFeatureExtractor
    d = tmp_path_factory.mktemp("hf")
    hf_model.save_pretrained(d); roberta_tok.save_pretrained(d)
    ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad", frequency_min=50, frequency_max=14000).save_pretrained(d)
    return d


def _hf_text(hf, tok, texts=TEXTS):
    t = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad(): return hf.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).pooler_output


def test_hf_roundtrip_front_end_audio_text(hf_model, hf_folder, roberta_tok):
    "Hugging Face layout: clapbook's front end = ClapFeatureExtractor, and both embeddings = ClapModel's, to TOL."
    from transformers import ClapFeatureExtractor
    model = P.load_pretrained(hf_folder)
    assert model.frontend.pad == "repeatpad" and model.sample_rate == 48000
    fe = ClapFeatureExtractor.from_pretrained(hf_folder)
    waves = _waves(48000, (3, 10, 7.3))                              # repeat-padded, exact, repeat-padded
    feats = fe(waves, sampling_rate=48000, return_tensors="pt")["input_features"]      # (3, 1, 1001, 64)
    ours_mel = model.logmel(torch.stack([crop_or_pad(torch.from_numpy(w), 10, 48000, pad="repeatpad") for w in waves]))
    assert ours_mel.shape == (3, 64, 1001)
    assert (ours_mel.transpose(1, 2) - feats[:, 0]).abs().max() < 1e-3          # dB, float32 vs HF's float64
    with torch.no_grad(): ref = hf_model.get_audio_features(input_features=feats).pooler_output
    assert (model.embed_audio(waves, sample_rate=48000) - ref).abs().max() < TOL
    assert (model.embed_text(TEXTS) - _hf_text(hf_model, roberta_tok)).abs().max() < TOL
    assert abs(model.logit_scale.item() - 20.0) < 1e-4


def test_hf_strict_errors(hf_folder, tmp_path):
    "A missing or unexpected tensor is an error naming it; a fused config is refused with the reason."
    import json, shutil
    from safetensors.torch import load_file, save_file
    sd = load_file(str(hf_folder / "model.safetensors"))
    for case in ("missing", "unexpected", "fused"):
        d = tmp_path / case; shutil.copytree(hf_folder, d)
        s = dict(sd)
        if case == "missing": s.pop("audio_projection.linear2.bias")
        if case == "unexpected": s["audio_model.audio_encoder.extra.weight"] = torch.zeros(3)
        save_file(s, str(d / "model.safetensors"))
        if case == "fused":
            cfg = json.loads((d / "config.json").read_text()); cfg["audio_config"]["enable_fusion"] = True
            (d / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(P.CheckpointError) as e: P.load_pretrained(d)
        msg = str(e.value)
        assert {"missing": "audio_projection.linear2.bias", "unexpected": "audio_model.audio_encoder.extra.weight",
                "fused": "feature fusion"}[case] in msg, msg


# ---- LAION-CLAP .pt: names from laion_clap/clap_module (htsat.py, model.py) ----------------------------------

def _hf_audio_to_htsat(hf, prefix):
    "The HF audio tower's tensors in LAION / msclap HTS-AT names (the published layout), with the stored masks."
    enc, out = hf.audio_model.audio_encoder, {}
    sd = {k: v.clone() for k, v in enc.state_dict().items()}
    for k, v in sd.items():
        if re.search(r"attention\.self\.(key|value)\.", k): continue
        n = k.replace("batch_norm.", "bn0.").replace("layernorm_before", "norm1").replace("layernorm_after", "norm2")
        n = n.replace("attention.self.relative_position", "attn.relative_position").replace("attention.output.dense", "attn.proj")
        n = n.replace("intermediate.dense", "mlp.fc1").replace("output.dense", "mlp.fc2")
        if "attention.self.query." in k:
            kind = k.rsplit(".", 1)[1]
            v = torch.cat([sd[k], sd[k.replace("query", "key")], sd[k.replace("query", "value")]])
            n = n.replace(f"attention.self.query.{kind}", f"attn.qkv.{kind}")
        out[prefix + n] = v
    for i, stage in enumerate(enc.layers):                           # the shifted blocks' stored masks (HF computes them)
        h, w = enc.input_resolutions[i]
        for j, blk in enumerate(stage.blocks):
            blk.set_shift_and_window_size((h, w))
            m = blk.get_attn_mask(h, w, dtype=torch.float32, device="cpu")
            if m is not None: out[f"{prefix}layers.{i}.blocks.{j}.attn_mask"] = m
    g = torch.Generator().manual_seed(1)
    C = enc.num_features
    out[prefix + "tscam_conv.weight"] = torch.randn(527, C, 2, 3, generator=g) * 0.01
    out[prefix + "tscam_conv.bias"] = torch.zeros(527)
    out[prefix + "head.weight"], out[prefix + "head.bias"] = torch.randn(527, C, generator=g), torch.zeros(527)
    return out


def _torchlibrosa_frontend(prefix, sr, n_fft, n_mels, fmin, fmax):
    "What torchlibrosa's Spectrogram + LogmelFilterBank store: a Hann-windowed DFT basis and librosa's mel filters."
    from transformers.audio_utils import mel_filter_bank
    n, k = np.arange(n_fft), np.arange(n_fft // 2 + 1)[:, None]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)                  # periodic Hann
    mel = mel_filter_bank(n_fft // 2 + 1, n_mels, fmin, fmax, sr, norm="slaney", mel_scale="slaney")   # (bins, mels)
    return {prefix + "spectrogram_extractor.stft.conv_real.weight": torch.tensor(np.cos(2 * np.pi * k * n / n_fft) * win, dtype=torch.float32)[:, None],
            prefix + "spectrogram_extractor.stft.conv_imag.weight": torch.tensor(-np.sin(2 * np.pi * k * n / n_fft) * win, dtype=torch.float32)[:, None],
            prefix + "logmel_extractor.melW": torch.tensor(mel, dtype=torch.float32)}


@pytest.fixture(scope="module")
def laion_pt(hf_model, tmp_path_factory):
    sd = _hf_audio_to_htsat(hf_model, "audio_branch.")
    sd.update(_torchlibrosa_frontend("audio_branch.", 48000, 1024, 64, 50, 14000))
    for k, v in hf_model.text_model.state_dict().items(): sd["text_branch." + k] = v.clone()
    for side in ("audio", "text"):
        p = getattr(hf_model, f"{side}_projection")
        sd.update({f"{side}_projection.0.weight": p.linear1.weight, f"{side}_projection.0.bias": p.linear1.bias,
                   f"{side}_projection.2.weight": p.linear2.weight, f"{side}_projection.2.bias": p.linear2.bias})
        sd.update({f"{side}_transform.sequential.{i}.{kind}": torch.zeros(32, 32) if kind == "weight" else torch.zeros(32)
                   for i in (0, 3) for kind in ("weight", "bias")})
    sd["logit_scale_a"], sd["logit_scale_t"] = hf_model.logit_scale_a.detach(), hf_model.logit_scale_t.detach()
    path = tmp_path_factory.mktemp("laion") / "630k-audioset-best.pt"
    torch.save({"epoch": 45, "state_dict": {"module." + k: v.detach().clone() for k, v in sd.items()}}, path)
    return path


def test_laion_pt_matches_hf(laion_pt, hf_model, roberta_tok, capsys):
    "LAION `.pt` layout: the same weights give the Hugging Face model's embeddings, to TOL; the dropped list is printed."
    from transformers import ClapFeatureExtractor
    model = P.load_pretrained(laion_pt, tokenizer=roberta_tok)
    out = capsys.readouterr().out
    assert "audio_transform" in out and "logmel_extractor" in out and "logit_scale_t" in out
    waves = _waves(48000, (2.5, 10), seed=1)
    fe = ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad", frequency_min=50, frequency_max=14000)
    with torch.no_grad():
        ref = hf_model.get_audio_features(input_features=fe(waves, sampling_rate=48000, return_tensors="pt")["input_features"]).pooler_output
    assert (model.embed_audio(waves, sample_rate=48000) - ref).abs().max() < TOL
    assert (model.embed_text(TEXTS) - _hf_text(hf_model, roberta_tok)).abs().max() < TOL


def test_laion_refuses_fused_and_wrong_frontend(laion_pt, roberta_tok, tmp_path):
    sd = torch.load(laion_pt, weights_only=True)["state_dict"]
    fused = {**sd, "module.audio_branch.fusion_model.local_att.0.weight": torch.zeros(1)}
    torch.save({"state_dict": fused}, tmp_path / "fused.pt")
    with pytest.raises(P.CheckpointError, match="feature fusion"): P.load_pretrained(tmp_path / "fused.pt", tokenizer=roberta_tok)
    other = dict(sd); other["module.audio_branch.logmel_extractor.melW"] = sd["module.audio_branch.logmel_extractor.melW"] * 1.1
    torch.save({"state_dict": other}, tmp_path / "other.pt")
    with pytest.raises(P.CheckpointError, match="mel filters"): P.load_pretrained(tmp_path / "other.pt", tokenizer=roberta_tok)


def test_pickled_objects_are_refused(tmp_path):
    "Checkpoints load with weights_only=True: a file holding an arbitrary object is refused with a clear reason."
    import argparse
    torch.save({"args": argparse.Namespace(a=1), "model": {"x": torch.zeros(1)}}, tmp_path / "evil.pth")
    with pytest.raises(P.CheckpointError, match="weights_only=True"): P.read_state_dict(tmp_path / "evil.pth")


# ---- msclap .pth: names from msclap/models (clap.py, audio.py, htsat.py) ---------------------------------------

def _msclap_projection(g, d_in, d_out, prefix):
    return {prefix + "linear1.weight": torch.randn(d_out, d_in, generator=g) / math.sqrt(d_in),
            prefix + "linear2.weight": torch.randn(d_out, d_out, generator=g) / math.sqrt(d_out),
            prefix + "layer_norm.weight": 1 + 0.1 * torch.randn(d_out, generator=g), prefix + "layer_norm.bias": 0.1 * torch.randn(d_out, generator=g)}


def _apply_msclap_projection(sd, prefix, x):
    "msclap's Projection.forward: LayerNorm(e1 + linear2(GELU(e1))), e1 = linear1(x) (eval: no dropout)."
    e1 = x @ sd[prefix + "linear1.weight"].T
    e2 = F.gelu(e1) @ sd[prefix + "linear2.weight"].T
    return F.layer_norm(e1 + e2, e1.shape[-1:], sd[prefix + "layer_norm.weight"], sd[prefix + "layer_norm.bias"])


def _msclap_fe(sr_filters, seconds, fmax):
    "ClapFeatureExtractor set up as msclap's front end: 44.1 kHz, hop 320, repeat-and-cut, mel filters of `sr_filters`."
    from transformers import ClapFeatureExtractor
    from transformers.audio_utils import mel_filter_bank
    fe = ClapFeatureExtractor(sampling_rate=44100, hop_length=320, fft_window_size=1024, max_length_s=seconds,
                              frequency_min=50, frequency_max=fmax, truncation="rand_trunc", padding="repeat")
    fe.mel_filters_slaney = mel_filter_bank(513, 64, 50, fmax, sr_filters, norm="slaney", mel_scale="slaney")
    return fe


@pytest.fixture(scope="module")
def msclap_2023(hf_model, tmp_path_factory):
    from transformers import GPT2Config, GPT2Model
    torch.manual_seed(2)
    gpt = GPT2Model(GPT2Config(n_embd=64, n_head=1, n_layer=2, n_positions=80, n_inner=128)).eval()
    g = torch.Generator().manual_seed(3)
    sd = _hf_audio_to_htsat(hf_model, "audio_encoder.base.htsat.")
    sd.update(_torchlibrosa_frontend("audio_encoder.base.htsat.", 32000, 1024, 64, 50, 14000))   # msclap's HTS-AT config
    sd.update(_msclap_projection(g, 128, 48, "audio_encoder.projection."))
    sd.update({"caption_encoder.base." + k: v.clone() for k, v in gpt.state_dict().items()})
    sd["caption_encoder.base.h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 80, 80))     # older transformers' buffer
    sd.update(_msclap_projection(g, 64, 48, "caption_encoder.projection."))
    sd["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    path = tmp_path_factory.mktemp("msclap") / "CLAP_weights_2023.pth"
    torch.save({"model": sd}, path)
    return path, sd, gpt


def test_msclap_2023(msclap_2023, hf_model):
    "msclap 2023 layout: audio = HTS-AT (HF's) on msclap's front end -> Projection; text = GPT-2 at msclap's EOT index."
    from clapbook.text import load_gpt2_tokenizer
    path, sd, gpt = msclap_2023
    model = P.load_pretrained(path)
    assert model.sample_rate == 44100 and model.frontend.clip_seconds == 7
    waves = _waves(44100, (3, 7), seed=2)
    feats = _msclap_fe(32000, 7, 14000)(waves, sampling_rate=44100, return_tensors="pt")["input_features"]
    with torch.no_grad():
        pooled = hf_model.audio_model(input_features=feats).pooler_output
        ref = F.normalize(_apply_msclap_projection(sd, "audio_encoder.projection.", pooled), dim=-1)
    assert (model.embed_audio(waves, sample_rate=44100) - ref).abs().max() < TOL
    # msclap's preprocess_text: text + ' <|endoftext|>', pad token '!' (id 0) to 77, pooled at (ids != 0).sum() - 1
    tok = load_gpt2_tokenizer(); tok.pad_token = "!"
    rows = [tok(t + " <|endoftext|>", max_length=77, padding="max_length", return_tensors="pt") for t in TEXTS]  # = encode_plus
    ids, mask = torch.cat([r["input_ids"] for r in rows]), torch.cat([r["attention_mask"] for r in rows])
    with torch.no_grad():
        hidden = gpt(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = hidden[torch.arange(len(TEXTS)), torch.ne(ids, 0).sum(-1) - 1]
        tref = F.normalize(_apply_msclap_projection(sd, "caption_encoder.projection.", pooled), dim=-1)
    assert (model.embed_text(TEXTS) - tref).abs().max() < TOL


@pytest.fixture(scope="module")
def msclap_2022(tmp_path_factory):
    from transformers import BertConfig, BertModel
    from clapbook.audio_encoders import CNN14, CNN14Config
    torch.manual_seed(4)
    cnn = CNN14(CNN14Config(channels=(8, 16, 32, 64, 128, 256), embedding_dim=256)).eval()
    with torch.no_grad():
        cnn.bn0.running_mean.normal_(-40, 10); cnn.bn0.running_var.uniform_(50, 200)
    bert = BertModel(BertConfig(hidden_size=64, num_attention_heads=1, num_hidden_layers=2, intermediate_size=128)).eval()
    g = torch.Generator().manual_seed(5)
    sd = {"audio_encoder.base." + k: v.clone() for k, v in cnn.state_dict().items()}
    sd.update(_torchlibrosa_frontend("audio_encoder.base.", 44100, 1024, 64, 50, 14000))
    sd.update(_msclap_projection(g, 256, 48, "audio_encoder.projection."))
    sd.update({"caption_encoder.base." + k: v.clone() for k, v in bert.state_dict().items()})   # with BERT's pooler
    sd.update(_msclap_projection(g, 64, 48, "caption_encoder.projection."))
    sd["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    path = tmp_path_factory.mktemp("msclap22") / "CLAP_weights_2022.pth"
    torch.save({"model": sd}, path)
    return path, sd, cnn, bert


def test_msclap_2022(msclap_2022):
    "msclap 2022 layout: CNN14 on msclap's 5 s front end -> Projection; BERT's CLS token -> Projection."
    from clapbook.text import load_bert_tokenizer
    path, sd, cnn, bert = msclap_2022
    model = P.load_pretrained(path, version="2022")
    waves = _waves(44100, (1.7, 5), seed=3)
    feats = _msclap_fe(44100, 5, 14000)(waves, sampling_rate=44100, return_tensors="pt")["input_features"]
    with torch.no_grad():
        emb = cnn(feats[:, 0].transpose(1, 2).float())["embedding"]
        ref = F.normalize(_apply_msclap_projection(sd, "audio_encoder.projection.", emb), dim=-1)
    assert (model.embed_audio(waves, sample_rate=44100) - ref).abs().max() < TOL
    tok = load_bert_tokenizer()
    t = tok(TEXTS, max_length=100, padding="max_length", return_tensors="pt")        # msclap's encode_plus, batched
    with torch.no_grad():
        tref = F.normalize(_apply_msclap_projection(sd, "caption_encoder.projection.", bert(**t).last_hidden_state[:, 0]), dim=-1)
    assert (model.embed_text(TEXTS) - tref).abs().max() < TOL
    with pytest.raises(P.CheckpointError, match="2022"): P.load_pretrained(path, version="2023")


def test_convert_cli_roundtrip(msclap_2023, tmp_path):
    "`clapbook convert SRC DST` writes a clapbook folder (safetensors) that gives the same embeddings."
    from clapbook.cli import main
    path, _, _ = msclap_2023
    main(["convert", str(path), str(tmp_path / "out")])
    assert (tmp_path / "out" / "model.safetensors").is_file()
    a, b = P.load_pretrained(path), CLAP.from_pretrained(tmp_path / "out")   # published -> clapbook folder
    waves = _waves(44100, (2,), seed=4)
    assert torch.equal(a.embed_audio(waves, sample_rate=44100), b.embed_audio(waves, sample_rate=44100))
    assert torch.equal(a.embed_text(TEXTS), b.embed_text(TEXTS))


def test_offline_name_gives_clear_error(monkeypatch):
    "Offline, a hub name fails with what to download and where to put it (conftest sets HF_HUB_OFFLINE=1)."
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(P.CheckpointError) as e: P.resolve_checkpoint("msclap-2023")
    msg = str(e.value)
    assert "microsoft/msclap" in msg and "CLAP_weights_2023.pth" in msg and "huggingface-cli download" in msg
    with pytest.raises(P.CheckpointError, match="not a known checkpoint name"): P.resolve_checkpoint("no-such-thing.pt")
