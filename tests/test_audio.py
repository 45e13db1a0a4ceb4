"""The audio front end: loading, cropping, LogMel against librosa and torchaudio."""
import io, math

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from clapbook.audio import (AudioLoadError, FRONTENDS, LogMel, audio_to_bytes, crop_or_pad, load_audio,
                            mel_filterbank, save_audio)

librosa = pytest.importorskip("librosa", reason="librosa is a dev dependency used as the reference")


def _stereo(sr=22050, seconds=1.0):
    t = torch.arange(int(sr * seconds)) / sr
    return torch.stack([0.5 * torch.sin(2 * math.pi * 440 * t), 0.25 * torch.sin(2 * math.pi * 1000 * t)])


# chapter 01 checks the msclap, laion and tiny presets; here the others (msclap-2023 designs its filters at 32 kHz)
@pytest.mark.parametrize("name", [n for n in FRONTENDS if n not in ("msclap", "laion", "tiny")])
def test_logmel_matches_librosa_and_torchaudio(name):
    fe = FRONTENDS[name]
    x = 0.1 * torch.randn(2, int(fe.sample_rate * 1.5), generator=torch.Generator().manual_seed(0))
    ours = LogMel.from_preset(name)(x).numpy()
    sr = fe.filter_sample_rate or fe.sample_rate          # the mel filters' design rate (msclap 2023: 32 kHz); the STFT ignores it
    ref = np.stack([librosa.power_to_db(librosa.feature.melspectrogram(
        y=xi, sr=sr, n_fft=fe.n_fft, hop_length=fe.hop_length, n_mels=fe.n_mels, fmin=fe.f_min,
        fmax=fe.f_max, power=2.0, center=True, pad_mode="reflect"), ref=1.0, amin=1e-10, top_db=None) for xi in x.numpy()])
    ta = torchaudio.transforms.MelSpectrogram(sr, n_fft=fe.n_fft, hop_length=fe.hop_length,
                                              n_mels=fe.n_mels, f_min=fe.f_min, f_max=fe.f_max, norm="slaney",
                                              mel_scale="slaney")(x)
    ta = (10 * torch.log10(ta.clamp_min(1e-10))).numpy()
    assert ours.shape == ref.shape == ta.shape
    assert np.abs(ours - ref).max() < 0.01
    assert np.abs(ours - ta).max() < 0.01


def test_logmel_chunked_equals_whole_batch():
    x = torch.randn(5, 16000, generator=torch.Generator().manual_seed(1))
    whole = LogMel.from_preset("tiny", chunk_samples=10**9)(x)
    chunked = LogMel.from_preset("tiny", chunk_samples=16000)(x)     # one clip at a time
    torch.testing.assert_close(whole, chunked, rtol=0, atol=1e-4)


def test_logmel_truncated_bins_are_exact():
    fb = mel_filterbank(44100, 1024, 64, 50, 8000)
    m = LogMel()
    assert m.n_bins < 513 and not fb[:, m.n_bins:].any() and fb[:, m.n_bins - 1].any()


def test_logmel_silence_is_floored_not_nan():
    out = LogMel.from_preset("tiny")(torch.zeros(1, 8000))
    assert torch.isfinite(out).all() and float(out.max()) == pytest.approx(-100.0)


@pytest.mark.parametrize("ext,subtype", [("wav", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS"),
                                         ("aiff", "PCM_16"), ("mp3", None)])
def test_formats_decode_and_channels_are_averaged(tmp_path, ext, subtype):
    st = _stereo()
    p = save_audio(tmp_path / f"clip.{ext}", st, 22050, subtype=subtype)
    mono = load_audio(p, None)
    both = load_audio(p, None, mono=False)
    assert mono.dtype == torch.float32 and mono.dim() == 1
    assert both.shape[0] == 2 and both.shape[1] == mono.shape[0]      # averaged, not concatenated
    torch.testing.assert_close(mono, both.mean(0))
    if ext in ("wav", "flac", "aiff"):                                 # lossless: equals the true mean
        torch.testing.assert_close(mono, st.mean(0), atol=1e-4, rtol=0)


@pytest.mark.parametrize("orig,new", [(22050, 16000), (44100, 48000), (48000, 16000), (16000, 16000)])
def test_resampling_length(tmp_path, orig, new):
    p = save_audio(tmp_path / "c.wav", np.zeros(orig * 2, np.float32) + 0.01, orig)
    assert load_audio(p, new).shape == (2 * new,)


def test_sources_bytes_filelike_and_datasets_dicts(tmp_path):
    p = save_audio(tmp_path / "c.wav", _stereo(), 22050)
    ref = load_audio(p, 16000)
    raw = p.read_bytes()
    for src in (str(p), raw, io.BytesIO(raw), {"path": "c.wav", "bytes": raw}, {"path": str(p), "bytes": None}):
        torch.testing.assert_close(load_audio(src, 16000), ref)
    arr = {"array": _stereo().numpy(), "sampling_rate": 22050}
    assert load_audio(arr, 16000).shape == ref.shape


def _bad_files(tmp):
    (tmp / "empty.wav").write_bytes(b"")
    (tmp / "text.wav").write_text("not audio at all")
    (tmp / "zero.wav").write_bytes(audio_to_bytes(np.zeros(0, np.float32), 16000))
    sf.write(tmp / "nan.wav", np.array([0.1, np.nan, 0.3], np.float32), 16000, subtype="FLOAT")
    sf.write(tmp / "inf.flac.wav", np.array([0.1, np.inf], np.float32), 16000, subtype="FLOAT", format="WAV")
    (tmp / "truncated.wav").write_bytes(audio_to_bytes(np.ones(1000, np.float32) * 0.1, 16000)[:20])
    (tmp / "a_dir.wav").mkdir()
    return {"empty.wav": "empty", "text.wav": "not a readable audio file", "zero.wav": "zero samples",
            "nan.wav": "non-finite", "inf.flac.wav": "non-finite", "truncated.wav": "not a readable audio file",
            "a_dir.wav": "directory", "missing.wav": "no such file"}


def test_every_bad_input_names_file_and_problem(tmp_path):
    for name, problem in _bad_files(tmp_path).items():
        with pytest.raises(AudioLoadError) as e:
            load_audio(tmp_path / name, 16000)
        assert str(tmp_path / name) in str(e.value), e.value
        assert problem in e.value.reason, (name, e.value.reason)
        assert e.value.source == str(tmp_path / name)
    with pytest.raises(AudioLoadError, match="empty"):
        load_audio(b"", 16000)
    with pytest.raises(AudioLoadError, match="sampling_rate"):
        load_audio({"array": np.zeros(10)}, 16000)


def test_crop_or_pad_modes():
    x = torch.arange(100.)
    assert torch.equal(crop_or_pad(x, 0.5, 100), x[25:75])                       # centre crop in eval
    outs = {tuple(crop_or_pad(x, 0.5, 100, "train", generator=torch.Generator().manual_seed(s))[:1].tolist())
            for s in range(20)}
    assert len(outs) > 5                                                          # random in train
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(crop_or_pad(x, 0.5, 100, "train", generator=g1), crop_or_pad(x, 0.5, 100, "train", generator=g2))
    assert torch.equal(crop_or_pad(x[:30], 0.5, 100), torch.cat([x[:30], torch.zeros(20)]))
    assert torch.equal(crop_or_pad(x[:30], 0.7, 100, pad="repeat"), torch.cat([x[:30], x[:30], x[:10]]))
    with pytest.raises(ValueError, match="mode"):
        crop_or_pad(x, 0.5, 100, mode="test")


def test_error_for_bytes_is_stable_text():
    msgs = set()
    for _ in range(2):
        with pytest.raises(AudioLoadError) as e:
            load_audio(b"definitely not audio", 16000)
        msgs.add(str(e.value))
    assert len(msgs) == 1 and "0x" not in msgs.pop()


def test_two_dimensional_arrays_follow_one_convention():
    "(channels, samples) as load_audio returns it; soundfile's (samples, channels) where only that reading fits; else an error naming the shape."
    st = _stereo().numpy()                                             # (2, 22050)
    ref = load_audio({"array": st, "sampling_rate": 22050}, None, mono=False)
    assert ref.shape == (2, 22050)
    torch.testing.assert_close(load_audio({"array": st.T, "sampling_rate": 22050}, None, mono=False), ref)
    frames, sr = sf.read(io.BytesIO(audio_to_bytes(st, 16000)), dtype="float32")   # what soundfile returns
    assert frames.shape == (22050, 2)
    assert load_audio({"array": frames, "sampling_rate": sr}, None).shape == (22050,)
    assert load_audio({"array": np.zeros((16000, 2), np.float32), "sampling_rate": 16000}, None).shape == (16000,)
    assert load_audio({"array": np.zeros((16, 1000), np.float32), "sampling_rate": 16000}, None, mono=False).shape == (16, 1000)
    assert load_audio({"array": np.zeros((1000, 16), np.float32), "sampling_rate": 16000}, None, mono=False).shape == (16, 1000)
    assert load_audio({"array": np.ones((2, 2), np.float32), "sampling_rate": 16000}, None, mono=False).shape == (2, 2)
    for shape in [(17, 40), (40, 17), (100, 200), (300, 300), (0, 2), (2, 0), (2, 3, 4)]:
        with pytest.raises(AudioLoadError) as e:
            load_audio({"array": np.zeros(shape, np.float32), "sampling_rate": 16000}, None)
        assert str(shape) in str(e.value), e.value
