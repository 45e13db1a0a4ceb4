"""CLAP model: embeddings, batch independence, logit scale, safetensors save/load."""
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from clapbook.audio import save_audio
from clapbook.model import CLAP, CLAP_PRESETS, CLAPConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CLAP(CLAP_PRESETS["tiny"])


def _clips(sr, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(int(sr * s), generator=g) for s in (0.9, 2.0, 2.7)]


def test_embeddings_are_normalised_and_shaped(model):
    a = model.embed_audio(_clips(model.sample_rate))
    t = model.embed_text(["a bell", "rain falling on a roof"])
    assert a.shape == (3, model.config.joint_dim) and t.shape == (2, model.config.joint_dim)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(2))


def test_embedding_independent_of_batch_order_and_call(model):
    clips = _clips(model.sample_rate, seed=1)
    batched = model.embed_audio(clips)
    alone = torch.cat([model.embed_audio(c) for c in clips])
    reversed_ = model.embed_audio(clips[::-1]).flip(0)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched, reversed_, atol=1e-5, rtol=0)
    assert torch.equal(model.embed_audio(clips), batched)
    t1 = model.embed_text(["a dog barks"])
    t2 = model.embed_text(["a dog barks", "a much longer caption about a siren wailing in the distance"])[:1]
    torch.testing.assert_close(t1, t2, atol=1e-5, rtol=0)


def test_bf16_precision_close_to_fp32_and_cached_apart(model):
    clips = _clips(model.sample_rate, seed=3)
    caps = ["a bell rings twice", "rain falling on a roof"]
    model.clear_text_cache()
    t_bf = model.embed_text(caps, precision="bf16")             # first call fills the frozen tower's cache in bf16
    t32 = model.embed_text(caps)
    a32, a_bf = model.embed_audio(clips), model.embed_audio(clips, precision="bf16")
    assert a_bf.dtype == torch.float32 and a_bf.shape == a32.shape
    assert torch.nn.functional.cosine_similarity(a_bf, a32, dim=-1).min() > 0.99
    assert torch.nn.functional.cosine_similarity(t_bf, t32, dim=-1).min() > 0.99
    assert not torch.equal(a_bf, a32)                           # bf16 really ran: its rounding shows
    model.clear_text_cache()
    assert torch.equal(model.embed_text(caps), t32)             # the fp32 answer did not come from the bf16 cache entries
    assert torch.equal(model.embed_audio(clips, precision="bf16"), a_bf)   # deterministic across calls
    with pytest.raises(ValueError, match="precision='fp16'.*fp32"):
        model.embed_audio(clips, precision="fp16")


def test_embed_audio_restores_training_mode(model):
    model.train()
    model.embed_audio(_clips(model.sample_rate)[:1])
    assert model.training
    model.eval()


def test_paths_bytes_and_waveforms_agree(model, tmp_path):
    clip = _clips(model.sample_rate, seed=2)[1]
    p = save_audio(tmp_path / "c.wav", clip, model.sample_rate, subtype="FLOAT")
    by_wave = model.embed_audio(clip)
    torch.testing.assert_close(model.embed_audio([p]), by_wave, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.embed_audio([p.read_bytes()]), by_wave, atol=1e-5, rtol=0)
    up = torch.nn.functional.interpolate(clip[None, None], scale_factor=3, mode="linear")[0, 0]
    assert model.embed_audio(up, sample_rate=3 * model.sample_rate).shape == by_wave.shape


def test_logit_scale_init_and_clamp():
    m = CLAP(CLAP_PRESETS["tiny"])
    assert m.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        m.log_logit_scale.fill_(20.0)
    m.clamp_logit_scale_()                      # the cap is on the parameter, applied after each optimiser step (chapter 7)
    assert m.logit_scale.item() == pytest.approx(100.0)


def test_save_load_round_trip_without_pickle(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    files = {p.name for p in folder.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    back = CLAP.from_pretrained(folder)
    clips = _clips(model.sample_rate)
    assert torch.equal(back.embed_audio(clips), model.embed_audio(clips))
    assert torch.equal(back.embed_text(["a bell rings"]), model.embed_text(["a bell rings"]))


def test_strict_loading_names_the_bad_tensor(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    sd = load_file(str(folder / "model.safetensors"))
    sd["audio_projection.linear1.weight"] = sd["audio_projection.linear1.weight"][:, :3].contiguous()
    save_file(sd, str(folder / "model.safetensors"))
    with pytest.raises(Exception, match="audio_projection.linear1.weight"):
        CLAP.from_pretrained(folder)
    folder2 = model.save_pretrained(tmp_path / "m2")
    sd = load_file(str(folder2 / "model.safetensors"))
    sd.pop("text_projection.linear2.weight")
    save_file(sd, str(folder2 / "model.safetensors"))
    with pytest.raises(ValueError, match="text_projection.linear2.weight"):
        CLAP.from_pretrained(folder2)


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="joint_dims"):
        CLAPConfig.from_dict({"joint_dims": 3})
    with pytest.raises(ValueError, match="front end"):
        CLAP(CLAPConfig(frontend="nope"))


def test_htsat_tiny_preset_runs():
    torch.manual_seed(0)
    m = CLAP(CLAP_PRESETS["tiny-htsat"])
    e = m.embed_audio(_clips(m.sample_rate))
    assert e.shape == (3, 256) and torch.isfinite(e).all()
