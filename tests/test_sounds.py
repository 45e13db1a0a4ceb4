"Tests for clapbook.sounds: the generated corpora, audio folders and load_clips."
import csv
import json
import logging
import sys

import numpy as np
import pytest
import torch
from datasets import Audio, Dataset, DatasetDict, Features, Value

from clapbook.audio import audio_to_bytes, load_audio
import clapbook.sounds as S

SPLITS = ("train", "valid", "test")


def _all(dd):
    "Every example of a DatasetDict, split by split, as a list of dicts."
    return [ex for s in SPLITS for ex in dd[s]]


def _bytes(dd):
    return [ex["audio"]["bytes"] for ex in _all(dd)]


@pytest.fixture(scope="module")
def sw():
    return S.soundworld(n=160, seed=0)


@pytest.fixture(scope="module")
def inst():
    return S.instruments(n=140, seed=0)


@pytest.fixture(scope="module")
def sc():
    return S.scenes(n=40, seed=0)


# ---------------------------------------------------------------- determinism
@pytest.mark.parametrize("make,n", [(S.soundworld, 32), (S.instruments, 35), (S.scenes, 10)])
def test_same_seed_same_bytes_different_seed_different_audio(make, n):
    a, b, c = make(n=n, seed=3), make(n=n, seed=3), make(n=n, seed=4)
    assert _bytes(a) == _bytes(b)
    assert [ex["caption"] for ex in _all(a)] == [ex["caption"] for ex in _all(b)]
    assert sum(x != y for x, y in zip(_bytes(a), _bytes(c))) >= n - 1


def test_clip_does_not_depend_on_corpus_size(sw):
    small = S.soundworld(n=16, seed=0)
    assert small["train"][0]["audio"]["bytes"] == sw["train"][0]["audio"]["bytes"]


# ---------------------------------------------------------------- classes and splits
def test_soundworld_classes_cover_every_split_balanced(sw):
    assert len(S.SOUNDWORLD_CLASSES) >= 16 and len(set(S.SOUNDWORLD_CLASSES)) == len(S.SOUNDWORLD_CLASSES)
    assert {s: len(sw[s]) for s in SPLITS} == {"train": 128, "valid": 16, "test": 16}
    for s in SPLITS:
        counts = {c: sw[s]["label"].count(c) for c in S.SOUNDWORLD_CLASSES}
        assert min(counts.values()) >= 1 and max(counts.values()) - min(counts.values()) <= 1, (s, counts)


def test_instrument_classes_and_splits(inst):
    assert len(S.INSTRUMENTS) >= 16 and len(S.DRUMS) >= 8
    assert set(inst["test"]["label"]) == set(S.INSTRUMENT_CLASSES)


def test_assign_splits_by_hand():
    assert S.assign_splits(["a"] * 10) == ["train"] * 8 + ["valid", "test"]
    assert S.assign_splits(["a", "b", "a", "b", "a", "b"]) == ["train", "train", "valid", "valid", "test", "test"]
    with pytest.raises(ValueError, match="fractions"):
        S.assign_splits(["a"], (0.9, 0.2, 0.1))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        S.soundworld(n=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        S.soundworld(n=4, seed=-1)
    with pytest.raises(ValueError, match="unknown SoundWorld class 'dog'"):
        S.soundworld(n=2, classes=["dog"])
    with pytest.raises(ValueError, match="unknown corpus"):
        S.write_corpus("birds", "/tmp/never-written")


@pytest.mark.parametrize("sr", [8000, 44100])
def test_other_sample_rates(sr):
    dd = S.soundworld(n=16, seed=0, sample_rate=sr, seconds=1.0)
    assert dd["train"].features["audio"].sampling_rate == sr
    w = load_audio(dd["train"][0]["audio"], None)
    assert w.shape == (sr,)


# ---------------------------------------------------------------- captions are true of the audio
def test_loudness_words_match_measured_audio(sw, inst):
    for dd in (sw, inst):
        exs = _all(dd)
        meas = [S.loudness_db(load_audio(ex["audio"], None), 16000) for ex in exs]
        loud = [m for m, ex in zip(meas, exs) if "loud" in ex["attributes"]]
        soft = [m for m, ex in zip(meas, exs) if "soft" in ex["attributes"]]
        assert len(loud) >= 10 and len(soft) >= 10
        assert min(loud) > max(soft)
        for ex in exs:
            if "loud" in ex["attributes"]: assert "loud" in ex["caption"]
            if "soft" in ex["attributes"]: assert any(w in ex["caption"] for w in ("soft", "quiet", "faint", "gentle"))


def _peak_hz(x, sr):
    X = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[X.argmax()]


@pytest.mark.parametrize("label", ["whistle", "alarm beeps", "birdsong", "phone ringing"])
def test_pitch_words_match_measured_frequency(label):
    high, low = [], []
    for i in range(40):
        x, m = S.soundworld_clip(label, np.random.default_rng([7, i]), 16000, background=False)
        (high if "high-pitched" in m["attributes"] else low if "low-pitched" in m["attributes"] else []).append(_peak_hz(x, 16000))
    assert high and low and min(high) > max(low), (label, sorted(low), sorted(high))


def _bursts(x, sr, floor_db=18, min_gap=0.05):
    hop = sr // 200
    e = (x[: len(x) // hop * hop].reshape(-1, hop) ** 2).mean(1)
    on = np.flatnonzero(e > e.max() * 10 ** (-floor_db / 10)) * hop / sr
    return 1 + int((np.diff(on) > min_gap).sum())


@pytest.mark.parametrize("label", ["clock ticking", "knocking", "alarm beeps"])
def test_rate_and_count_words_match_the_audio(label):
    fast, slow = [], []
    for i in range(40):
        x, m = S.soundworld_clip(label, np.random.default_rng([8, i]), 16000, background=False)
        on, off = m["events"][0]["onset"], m["events"][0]["offset"]
        n = _bursts(x, 16000)
        if label != "alarm beeps": assert n == m["count"]          # "three knocks" means three
        rate = (n - 1) / max(off - on, 1e-3)
        if "fast" in m["attributes"]: fast.append(rate)
        if "slow" in m["attributes"]: slow.append(rate)
    assert fast and slow and np.mean(fast) > np.mean(slow)


def test_every_caption_names_its_class(sw):
    for ex in _all(sw):
        assert ex["label"][:4] in ex["caption"], ex["caption"]
        assert 0 <= ex["events"][0]["onset"] < ex["events"][0]["offset"] <= 2.0


def test_instrument_metadata_consistent(inst):
    for ex in _all(inst):
        assert ex["family"] == S.INSTRUMENT_FAMILIES[ex["label"]]
        assert ex["label"] in ex["caption"]
        if ex["label"] in S.INSTRUMENTS:
            assert ex["program"] in S.INSTRUMENTS[ex["label"]][1]
            _, _, lo, hi = S.INSTRUMENTS[ex["label"]]
            assert all(lo <= k <= hi for k in ex["notes"])
        else:
            assert ex["family"] == "percussion" and ex["pitch"] in S.DRUMS[ex["label"]] and ex["program"] in S.DRUM_KITS
        if "high-pitched" in ex["attributes"]: assert ex["pitch"] >= S.HIGH_NOTE and "high" in ex["caption"]
        if "low-pitched" in ex["attributes"]: assert ex["pitch"] <= S.LOW_NOTE and "low" in ex["caption"]
        if "loud" in ex["attributes"]: assert ex["velocity"] >= S.LOUD_VELOCITY
        if "soft" in ex["attributes"]: assert ex["velocity"] <= S.SOFT_VELOCITY
        assert len(ex["events"]) == len(ex["notes"]) and all(e["onset"] < e["offset"] <= 2.0 for e in ex["events"])
    families = {ex["family"] for ex in _all(inst)}
    assert {"keyboard", "strings", "brass", "woodwind", "percussion"} <= families


def test_rendered_note_is_at_its_pitch_and_synth_is_released():
    with S.gm_synth(16000) as (synth, sfid):
        x = S.render_notes(synth, sfid, [(0.05, 0.9, 69, 100)], program=73, n_samples=16000)   # flute A4
    assert synth.soundfonts == {}                              # SoundFont unloaded on exit
    assert abs(_peak_hz(x[1600:], 16000) - 440) < 6


def test_missing_tinysoundfont_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)
    with pytest.raises(ImportError, match='install with `pip install --no-deps "tinysoundfont>=0.3"` '
                                          r'\(its declared pyaudio dependency is not needed\)'):
        S.instruments(n=2)


# ---------------------------------------------------------------- scenes
def test_scene_events_consistent_with_audio_and_caption(sc):
    assert {ex["relation"] for ex in _all(sc)} == {"sequence", "overlap"}
    for ex in _all(sc):
        w = load_audio(ex["audio"], 16000)
        T, ev = len(w) / 16000, ex["events"]
        assert T == 4.0 and len(ev) in (2, 3)
        assert all(0 <= e["onset"] < e["offset"] <= T for e in ev)
        assert [e["onset"] for e in ev] == sorted(e["onset"] for e in ev)
        for e in ev:                                        # each event is audible where it says
            seg = w[int(e["onset"] * 16000):int(e["offset"] * 16000)]
            assert seg.abs().max() > 1e-3
        named = sorted(ev, key=lambda e: min(ex["caption"].find(p) for p in S.SCENE_PHRASES[e["label"]] if p in ex["caption"]))
        if ex["relation"] == "sequence":
            assert all(a["offset"] <= b["onset"] for a, b in zip(ev, ev[1:]))
            expected = ev[::-1] if ex["connector"] == "after" else ev      # "B after A" names B first
            assert [e["label"] for e in named] == [e["label"] for e in expected], ex["caption"]
            assert ex["label"] == " -> ".join(e["label"] for e in ev)
            for a, b in zip(ev, ev[1:]):                     # silence between consecutive events
                gap = w[int(a["offset"] * 16000) + 40:int(b["onset"] * 16000) - 40]
                if len(gap): assert gap.abs().max() < 1e-3
        else:
            assert ev[0]["offset"] > ev[1]["onset"]         # they overlap
            assert ex["connector"] in S.SCENE_RELATIONS["while"] + S.SCENE_RELATIONS["over"]


def test_after_puts_the_named_first_event_second():
    x, m = None, None
    for i in range(200):
        x, m = S.scene_clip("sequence", np.random.default_rng([1, i]))
        if m["connector"] == "after": break
    assert m["connector"] == "after"
    first, second = m["events"]
    assert m["caption"] == f"{S.SCENE_PHRASES[second['label']][1]} after {S.SCENE_PHRASES[first['label']][1]}"


# ---------------------------------------------------------------- decode_batch
def test_decode_batch_shapes(sw):
    batch = sw["valid"][:3]
    waves = S.decode_batch(batch, 16000)
    assert [tuple(w.shape) for w in waves] == [(32000,)] * 3
    assert S.decode_batch(batch, 8000, seconds=1.5).shape == (3, 12000)
    assert S.decode_batch(list(sw["valid"].select(range(2))), 16000)[0].dtype == torch.float32
    with pytest.raises(KeyError, match="no audio column 'wav'"):
        S.decode_batch(batch, 16000, audio_column="wav")


# ---------------------------------------------------------------- audio folders
def test_audiofolder_round_trip_and_same_bytes_on_disk(tmp_path):
    dd = S.soundworld(n=48, seed=1)
    a = S.write_audiofolder(dd, tmp_path / "a")
    b = S.write_corpus("soundworld", tmp_path / "b", n=48, seed=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 48 + 3
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    back = S.load_clips(a)
    assert isinstance(back, DatasetDict) and list(back) == list(SPLITS)
    for s in SPLITS:
        for col in ("caption", "label", "events", "attributes", "loudness_db", "count"):
            assert back[s][col] == dd[s][col], col
        for x, y in zip(S.decode_batch(back[s], None), S.decode_batch(dd[s], None)):
            assert torch.equal(x, y)
    one = S.load_clips(a, split="test")
    assert isinstance(one, Dataset) and one["caption"] == dd["test"]["caption"]
    with pytest.raises(KeyError, match="split 'validation' not found"):
        S.load_clips(a, split="validation")


def test_write_corpus_instruments_and_scenes(tmp_path):
    for name in ("instruments", "scenes"):
        out = S.write_corpus(name, tmp_path / name, n=12, seed=0, seconds=2.0)
        rows = list(csv.DictReader(open(out / "train" / "metadata.csv")))
        assert rows and all((out / "train" / r["file_name"]).is_file() for r in rows)
        assert isinstance(json.loads(rows[0]["events"]), list)


@pytest.fixture
def messy_folder(tmp_path):
    good = audio_to_bytes(np.sin(np.arange(8000) / 4).astype(np.float32) * 0.3, 16000)
    d = tmp_path / "clips"
    d.mkdir()
    for f in ("ok1.wav", "ok2.wav", "ok3.wav", "blank.wav"): (d / f).write_bytes(good)
    (d / "cut.wav").write_bytes(good[:2000])                 # truncated download
    (d / "empty.wav").write_bytes(b"")
    (d / "readme.wav").write_text("this is not audio")       # a text file renamed .wav
    rows = [("ok1.wav", "a tone"), ("cut.wav", "cut short"), ("ok2.wav", "another tone"), ("empty.wav", "nothing"),
            ("readme.wav", "text"), ("missing.wav", "listed but absent"), ("blank.wav", ""), ("ok3.wav", "a third tone")]
    with open(d / "metadata.csv", "w", newline="") as f:
        csv.writer(f).writerows([("file_name", "text", "speaker")] + [(a, b, i) for i, (a, b) in enumerate(rows)])
    return d


def test_bad_clips_are_reported_by_name_and_reason_and_skipped(messy_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="clapbook.sounds"):
        ds, skipped = S.load_clips(messy_folder, text_column="text", return_skipped=True)
    assert ds["train"]["caption"] == ["a tone", "another tone", "a third tone"]
    assert ds["train"]["speaker"] == [0, 2, 7]
    reasons = {s.file.rsplit("/", 1)[-1]: s.reason for s in skipped}
    assert len(skipped) == 5
    assert reasons["cut.wav"].startswith("truncated: the WAV header promises")
    assert reasons["empty.wav"] == "the file is empty (0 bytes)"
    assert reasons["readme.wav"].startswith("not a readable audio file")
    assert reasons["missing.wav"] == "no such file"
    assert reasons["blank.wav"] == "empty caption"
    for name, reason in reasons.items():                    # one log line per file, naming it and the reason
        assert any(name in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    assert any("skipped 5 of 8" in r.getMessage() for r in caplog.records)
    for w in S.decode_batch(ds["train"], 16000): assert w.shape == (8000,) and w.abs().max() > 0.2


def test_captions_file_next_to_a_flat_folder_and_jsonl(messy_folder, tmp_path):
    meta = tmp_path / "captions.jsonl"
    meta.write_text("\n".join(json.dumps({"file_name": f, "caption": c, "tags": [c]}) for f, c in
                              [("ok1.wav", "one"), ("ok2.wav", "two"), ("empty.wav", "zero")]) + "\n")
    ds, skipped = S.load_clips(messy_folder, metadata=meta, return_skipped=True)
    assert ds["train"]["caption"] == ["one", "two"] and ds["train"]["tags"] == [["one"], ["two"]]
    assert [s.reason for s in skipped] == ["the file is empty (0 bytes)"]
    # the caption file itself as the source: file names relative to its folder
    (messy_folder / "metadata.csv").unlink()
    (messy_folder / "captions.csv").write_text("file_name,caption\nok3.wav,three\n")
    assert S.load_clips(messy_folder / "captions.csv")["train"]["caption"] == ["three"]


def test_clear_errors_for_missing_things(messy_folder, tmp_path):
    with pytest.raises(ValueError, match="text column 'caption' not found in .*metadata.csv; its columns are"):
        S.load_clips(messy_folder)
    with pytest.raises(ValueError, match="file column 'path' not found"):
        S.load_clips(messy_folder, text_column="text", file_column="path")
    with pytest.raises(FileNotFoundError, match="caption file .*nope.csv.* does not exist"):
        S.load_clips(messy_folder, metadata=tmp_path / "nope.csv")
    (tmp_path / "bare").mkdir()
    with pytest.raises(FileNotFoundError, match="no metadata.csv or metadata.jsonl"):
        S.load_clips(tmp_path / "bare")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        S.load_clips(str(tmp_path / "not-here"))


def test_load_clips_from_an_in_memory_hf_dataset_with_custom_columns():
    good = audio_to_bytes(np.linspace(-0.5, 0.5, 4000).astype(np.float32), 16000)
    feats = Features({"sound": {"bytes": Value("binary"), "path": Value("string")}, "description": Value("string"),
                      "id": Value("int64")})
    ds = Dataset.from_dict({"sound": [{"bytes": good, "path": "a.wav"}, {"bytes": good[:40], "path": "b.wav"},
                                      {"bytes": good, "path": "c.wav"}],
                            "description": ["ramp one", "broken", "ramp two"], "id": [1, 2, 3]}, features=feats)
    ds = ds.cast_column("sound", Audio(sampling_rate=16000))             # decode=True, as loaded from the hub
    out, skipped = S.load_clips(ds, audio_column="sound", text_column="description", return_skipped=True)
    assert isinstance(out, Dataset)
    assert out.column_names == ["audio", "caption", "id"] and out["id"] == [1, 3]
    assert out.features["audio"].decode is False and out.features["audio"].sampling_rate == 16000
    assert [(s.file, s.index) for s in skipped] == [("b.wav", 1)]
    assert torch.allclose(S.decode_batch(out[:1], 16000)[0], load_audio(good, 16000))
    dd = S.load_clips(DatasetDict(train=ds, test=ds), audio_column="sound", text_column="description")
    assert list(dd) == ["train", "test"] and len(dd["test"]) == 2
    assert len(S.load_clips(DatasetDict(train=ds, test=ds), "sound", "description", split="test")) == 2
    with pytest.raises(ValueError, match="text column 'caption' not found in the dataset; its columns are"):
        S.load_clips(ds, audio_column="sound")
    with pytest.raises(ValueError, match="audio column 'audio' not found"):
        S.load_clips(ds, text_column="description")


def test_check_clip_reasons():
    good = audio_to_bytes(np.zeros(800, np.float32) + 0.1, 16000)
    assert S.check_clip(good) is None
    assert S.check_clip(b"") == "the bytes are empty"
    assert S.check_clip(good[:44]) == "the clip has zero samples"
    assert S.check_clip(good[:500]) == "truncated: the WAV header promises 1600 bytes of audio but the file holds 456"


def test_hub_name_goes_through_load_dataset_and_the_same_checks(monkeypatch):
    good = audio_to_bytes(np.full(1600, 0.2, np.float32), 16000)
    ds = Dataset.from_dict({"audio": [{"bytes": good, "path": "x.wav"}, {"bytes": b"", "path": "y.wav"}],
                            "text": ["a hum", "nothing"]},
                           features=Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "text": Value("string")}))
    calls = []

    def fake_load_dataset(name, split=None, **kw):
        calls.append((name, split, kw))
        return ds if split else DatasetDict(train=ds)
    monkeypatch.setattr(S.datasets, "load_dataset", fake_load_dataset)
    dd, skipped = S.load_clips("someone/hums", text_column="text", return_skipped=True, revision="main")
    assert calls == [("someone/hums", None, {"revision": "main"})]
    assert dd["train"]["caption"] == ["a hum"] and [s.file for s in skipped] == ["y.wav"]
    assert S.load_clips("someone/hums", text_column="text", split="train")["caption"] == ["a hum"]


def test_a_second_caption_column_is_an_error_not_an_overwrite():
    ds = Dataset.from_dict({"audio": ["a.wav"], "text": ["x"], "caption": ["y"]})
    with pytest.raises(ValueError, match="already has a column 'caption' besides 'text'"):
        S.load_clips(ds, text_column="text")


def test_flat_dataset_and_jsonl_split_folders(tmp_path):
    ds = S.soundworld(n=16, seed=2)["train"]
    flat = S.write_audiofolder(ds, tmp_path / "flat")
    assert (flat / "metadata.csv").is_file() and len(list(flat.glob("*.wav"))) == len(ds)
    back = S.load_clips(flat)
    assert list(back) == ["train"] and back["train"]["caption"] == ds["caption"]
    for split in ("train", "test"):
        d = tmp_path / "jl" / split
        d.mkdir(parents=True)
        (d / "a.wav").write_bytes(ds[0]["audio"]["bytes"])
        (d / "metadata.jsonl").write_text(json.dumps({"file_name": "a.wav", "caption": f"{split} clip", "n": 1}) + "\n")
    dd = S.load_clips(tmp_path / "jl")
    assert list(dd) == ["train", "test"] and dd["test"]["caption"] == ["test clip"] and dd["test"]["n"] == [1]


def test_instruments_never_keep_a_silent_rendering():
    # seed 0 at n=2048 draws a saxophone key that one GM program has no sample for; the
    # generator must draw again rather than keep (or fail on) a silent clip
    import numpy as np
    from clapbook.audio import load_audio
    ds = S.instruments(n=2048, seed=0)
    for split in ds.values():
        for row in split.select(range(0, len(split), 7)):
            assert float(load_audio(row["audio"], None).abs().max()) > 1e-3, row["caption"]
