"""CLAP model: embeddings, batch independence, logit scale, safetensors save/load."""
import math

import torch.nn.functional as F

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


# ---------------------------------------------------------------- whole-length audio
def _long_scene(sr, seconds=60.0, event_at=5.0, seed=0):
    "A quiet noise floor of `seconds`, and the same with a loud 1 s chirp at `event_at` s (outside the centre window)."
    g = torch.Generator().manual_seed(seed)
    floor = 0.01 * torch.randn(int(sr * seconds), generator=g)
    t = torch.arange(sr) / sr
    chirp = 0.8 * torch.sin(2 * math.pi * (300 + 1500 * t) * t)
    with_event = floor.clone(); s = int(event_at * sr); with_event[s:s + sr] += chirp
    return floor, with_event


def test_an_event_outside_the_centre_window_is_missed_by_the_crop_and_found_by_the_windows(model):
    "60 s clips: the crop sees the same centre 2 s with or without the event; the windows see the event."
    floor, with_event = _long_scene(model.sample_rate)
    crop = model.embed_audio([floor, with_event], long_audio="crop")
    assert torch.equal(crop[0], crop[1])                         # the event changes nothing: missed
    win = model.embed_audio([floor, with_event])                 # the default: windows over the whole clip
    # found: the windows without the event are the same samples in both clips, so every difference comes from
    # the event's window (1 of 30, averaged in); an untrained model moves it by about 5e-4
    assert not torch.equal(win[0], win[1]) and (win[0] - win[1]).abs().max() > 1e-4
    torch.testing.assert_close(win.norm(dim=-1), torch.ones(2))


def test_windows_are_the_documented_mean_and_do_not_depend_on_the_batch(model):
    from clapbook.model import audio_windows, window_starts
    sr = model.sample_rate
    _, clip = _long_scene(sr, seconds=7.3, event_at=1.0, seed=1)
    assert window_starts(len(clip), 2 * sr, 2 * sr) == [0, 2 * sr, 4 * sr, len(clip) - 2 * sr]
    with torch.no_grad():
        by_hand = F.normalize(F.normalize(model.encode_audio(audio_windows(clip, model.frontend)), dim=-1).mean(0), dim=-1)
    alone = model.embed_audio(clip)[0]
    torch.testing.assert_close(alone, by_hand, atol=1e-5, rtol=0)
    others = _clips(sr, seed=4)
    for batch_size in (1, 3, 32):                                # windows of other clips share the forward passes
        mixed = model.embed_audio([others[0], clip, others[2]], batch_size=batch_size)
        torch.testing.assert_close(mixed[1], alone, atol=1e-5, rtol=0)
        torch.testing.assert_close(mixed[0], model.embed_audio(others[0])[0], atol=1e-5, rtol=0)
    half = model.embed_audio(clip, window_seconds=1.0, hop_seconds=0.5)[0]      # settable window and hop
    with torch.no_grad():
        w = audio_windows(clip, model.frontend, 1.0, 0.5)
        assert len(w) == len(window_starts(len(clip), sr, sr // 2)) == 14
        torch.testing.assert_close(half, F.normalize(F.normalize(model.encode_audio(w), dim=-1).mean(0), dim=-1), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="long_audio='middle'"):
        model.embed_audio(clip, long_audio="middle")


def test_short_clips_give_the_same_embedding_with_windows_and_with_the_crop(model):
    clips = [c[: int(model.sample_rate * 1.9)] for c in _clips(model.sample_rate, seed=5)] + [torch.zeros(model.sample_rate * 2) + 0.1]
    assert torch.equal(model.embed_audio(clips), model.embed_audio(clips, long_audio="crop"))


# ---------------------------------------------------------------- the frozen text tower's cache, bounded in bytes
def test_text_cache_stays_within_its_byte_bound_and_gives_the_same_features(model):
    from clapbook.model import TextFeatureCache
    caps = [f"a sound number {i} with some words" for i in range(40)]
    model.text_cache = TextFeatureCache()
    free = model.embed_text(caps)
    one_row = TextFeatureCache.entry_bytes(("x",) * 12, torch.zeros(384))
    model.text_cache = TextFeatureCache(max_bytes=5 * one_row)
    for _ in range(2): bounded = model.embed_text(caps, batch_size=8)
    assert 0 < len(model.text_cache) <= 5 and model.text_cache.nbytes <= 5 * one_row
    torch.testing.assert_close(bounded, free, atol=1e-5, rtol=0)
    model.text_cache = TextFeatureCache()
