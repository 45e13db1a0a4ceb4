"Tests for clapbook.sounds: the generated corpora, their splits, and captions that are true of the audio."
import sys

import numpy as np
import pytest

from clapbook.audio import load_audio
from clapbook.synth import loudness_db
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
        meas = [loudness_db(load_audio(ex["audio"], None), 16000) for ex in exs]
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


def test_instruments_never_keep_a_silent_rendering():
    # seed 0 at n=2048 draws a saxophone key that one GM program has no sample for; the
    # generator must draw again rather than keep (or fail on) a silent clip
    ds = S.instruments(n=2048, seed=0)
    for split in ds.values():
        for row in split.select(range(0, len(split), 7)):
            assert float(load_audio(row["audio"], None).abs().max()) > 1e-3, row["caption"]
