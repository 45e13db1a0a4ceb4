"Tests for clapbook.data: decoding batches, writing audio folders, load_clips on good and broken data, the corpus cache."
import csv
import json
import logging

import numpy as np
import pytest
import torch
from datasets import Audio, Dataset, DatasetDict, Features, Value

from clapbook.audio import audio_to_bytes, load_audio
from clapbook.sounds import soundworld
import clapbook.data as D

SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def sw():
    return soundworld(n=48, seed=0)


# ---------------------------------------------------------------- decode_batch
def test_decode_batch_shapes(sw):
    batch = sw["valid"][:3]
    waves = D.decode_batch(batch, 16000)
    assert [tuple(w.shape) for w in waves] == [(32000,)] * 3
    assert D.decode_batch(batch, 8000, seconds=1.5).shape == (3, 12000)
    assert D.decode_batch(list(sw["valid"].select(range(2))), 16000)[0].dtype == torch.float32
    with pytest.raises(KeyError, match="no audio column 'wav'"):
        D.decode_batch(batch, 16000, audio_column="wav")


# ---------------------------------------------------------------- audio folders
def test_audiofolder_round_trip_and_same_bytes_on_disk(tmp_path):
    dd = soundworld(n=48, seed=1)
    a = D.write_audiofolder(dd, tmp_path / "a")
    b = D.write_corpus("soundworld", tmp_path / "b", n=48, seed=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 48 + 3 + 1                                     # clips, a metadata.csv per split, the marker
    assert json.loads((a / ".complete").read_text()) == {"clips": {"train": 16, "valid": 16, "test": 16}}
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    back = D.load_clips(a)
    assert isinstance(back, DatasetDict) and list(back) == list(SPLITS)
    for s in SPLITS:
        for col in ("caption", "label", "events", "attributes", "loudness_db", "count"):
            assert back[s][col] == dd[s][col], col
        for x, y in zip(D.decode_batch(back[s], None), D.decode_batch(dd[s], None)):
            assert torch.equal(x, y)
    one = D.load_clips(a, split="test")
    assert isinstance(one, Dataset) and one["caption"] == dd["test"]["caption"]
    with pytest.raises(KeyError, match="split 'validation' not found"):
        D.load_clips(a, split="validation")


def test_write_corpus_instruments_and_scenes(tmp_path):
    for name in ("instruments", "scenes"):
        out = D.write_corpus(name, tmp_path / name, n=12, seed=0, seconds=2.0)
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
    with caplog.at_level(logging.WARNING, logger="clapbook.data"):
        ds, skipped = D.load_clips(messy_folder, text_column="text", return_skipped=True)
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
    for w in D.decode_batch(ds["train"], 16000): assert w.shape == (8000,) and w.abs().max() > 0.2


def test_captions_file_next_to_a_flat_folder_and_jsonl(messy_folder, tmp_path):
    meta = tmp_path / "captions.jsonl"
    meta.write_text("\n".join(json.dumps({"file_name": f, "caption": c, "tags": [c]}) for f, c in
                              [("ok1.wav", "one"), ("ok2.wav", "two"), ("empty.wav", "zero")]) + "\n")
    ds, skipped = D.load_clips(messy_folder, metadata=meta, return_skipped=True)
    assert ds["train"]["caption"] == ["one", "two"] and ds["train"]["tags"] == [["one"], ["two"]]
    assert [s.reason for s in skipped] == ["the file is empty (0 bytes)"]
    # the caption file itself as the source: file names relative to its folder
    (messy_folder / "metadata.csv").unlink()
    (messy_folder / "captions.csv").write_text("file_name,caption\nok3.wav,three\n")
    assert D.load_clips(messy_folder / "captions.csv")["train"]["caption"] == ["three"]


def test_clear_errors_for_missing_things(messy_folder, tmp_path):
    with pytest.raises(ValueError, match="text column 'caption' not found in .*metadata.csv; its columns are"):
        D.load_clips(messy_folder)
    with pytest.raises(ValueError, match="file column 'path' not found"):
        D.load_clips(messy_folder, text_column="text", file_column="path")
    with pytest.raises(FileNotFoundError, match="caption file .*nope.csv.* does not exist"):
        D.load_clips(messy_folder, metadata=tmp_path / "nope.csv")
    (tmp_path / "bare").mkdir()
    with pytest.raises(FileNotFoundError, match="no metadata.csv or metadata.jsonl"):
        D.load_clips(tmp_path / "bare")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.load_clips(str(tmp_path / "not-here"))


def test_load_clips_from_an_in_memory_hf_dataset_with_custom_columns():
    good = audio_to_bytes(np.linspace(-0.5, 0.5, 4000).astype(np.float32), 16000)
    feats = Features({"sound": {"bytes": Value("binary"), "path": Value("string")}, "description": Value("string"),
                      "id": Value("int64")})
    ds = Dataset.from_dict({"sound": [{"bytes": good, "path": "a.wav"}, {"bytes": good[:40], "path": "b.wav"},
                                      {"bytes": good, "path": "c.wav"}],
                            "description": ["ramp one", "broken", "ramp two"], "id": [1, 2, 3]}, features=feats)
    ds = ds.cast_column("sound", Audio(sampling_rate=16000))             # decode=True, as loaded from the hub
    out, skipped = D.load_clips(ds, audio_column="sound", text_column="description", return_skipped=True)
    assert isinstance(out, Dataset)
    assert out.column_names == ["audio", "caption", "id"] and out["id"] == [1, 3]
    assert out.features["audio"].decode is False and out.features["audio"].sampling_rate == 16000
    assert [(s.file, s.index) for s in skipped] == [("b.wav", 1)]
    assert torch.allclose(D.decode_batch(out[:1], 16000)[0], load_audio(good, 16000))
    dd = D.load_clips(DatasetDict(train=ds, test=ds), audio_column="sound", text_column="description")
    assert list(dd) == ["train", "test"] and len(dd["test"]) == 2
    assert len(D.load_clips(DatasetDict(train=ds, test=ds), "sound", "description", split="test")) == 2
    with pytest.raises(ValueError, match="text column 'caption' not found in the dataset; its columns are"):
        D.load_clips(ds, audio_column="sound")
    with pytest.raises(ValueError, match="audio column 'audio' not found"):
        D.load_clips(ds, text_column="description")


def test_check_clip_reasons():
    good = audio_to_bytes(np.zeros(800, np.float32) + 0.1, 16000)
    assert D.check_clip(good) is None
    assert D.check_clip(b"") == "the bytes are empty"
    assert D.check_clip(good[:44]) == "the clip has zero samples"
    assert D.check_clip(good[:500]) == "truncated: the WAV header promises 1600 bytes of audio but the file holds 456"


def test_hub_name_goes_through_load_dataset_and_the_same_checks(monkeypatch):
    good = audio_to_bytes(np.full(1600, 0.2, np.float32), 16000)
    ds = Dataset.from_dict({"audio": [{"bytes": good, "path": "x.wav"}, {"bytes": b"", "path": "y.wav"}],
                            "text": ["a hum", "nothing"]},
                           features=Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "text": Value("string")}))
    calls = []

    def fake_load_dataset(name, split=None, **kw):
        calls.append((name, split, kw))
        return ds if split else DatasetDict(train=ds)
    monkeypatch.setattr(D.datasets, "load_dataset", fake_load_dataset)
    dd, skipped = D.load_clips("someone/hums", text_column="text", return_skipped=True, revision="main")
    assert calls == [("someone/hums", None, {"revision": "main"})]
    assert dd["train"]["caption"] == ["a hum"] and [s.file for s in skipped] == ["y.wav"]
    assert D.load_clips("someone/hums", text_column="text", split="train")["caption"] == ["a hum"]


def test_a_second_caption_column_is_an_error_not_an_overwrite():
    ds = Dataset.from_dict({"audio": ["a.wav"], "text": ["x"], "caption": ["y"]})
    with pytest.raises(ValueError, match="already has a column 'caption' besides 'text'"):
        D.load_clips(ds, text_column="text")


def test_flat_dataset_and_jsonl_split_folders(tmp_path):
    ds = soundworld(n=16, seed=2)["train"]
    flat = D.write_audiofolder(ds, tmp_path / "flat")
    assert (flat / "metadata.csv").is_file() and len(list(flat.glob("*.wav"))) == len(ds)
    back = D.load_clips(flat)
    assert list(back) == ["train"] and back["train"]["caption"] == ds["caption"]
    for split in ("train", "test"):
        d = tmp_path / "jl" / split
        d.mkdir(parents=True)
        (d / "a.wav").write_bytes(ds[0]["audio"]["bytes"])
        (d / "metadata.jsonl").write_text(json.dumps({"file_name": "a.wav", "caption": f"{split} clip", "n": 1}) + "\n")
    dd = D.load_clips(tmp_path / "jl")
    assert list(dd) == ["train", "test"] and dd["test"]["caption"] == ["test clip"] and dd["test"]["n"] == [1]


def test_write_corpus_names_an_unknown_corpus(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus"):
        D.write_corpus("birds", tmp_path / "never-written")
    assert not (tmp_path / "never-written").exists()


def test_corpus_is_generated_once_then_read_from_its_folder(tmp_path, monkeypatch):
    calls = []
    real = D.CORPORA["soundworld"]
    monkeypatch.setitem(D.CORPORA, "soundworld", lambda **kw: calls.append(kw) or real(**kw))
    first = D.corpus("soundworld", tmp_path, n=16, seed=3, workers=1)
    again = D.corpus("soundworld", tmp_path, n=16, seed=3, workers=1)
    assert calls == [dict(n=16, seed=3, workers=1)]                    # the second call read the folder
    assert (tmp_path / "soundworld-n16-seed3" / "test" / "metadata.csv").is_file()
    assert (tmp_path / "soundworld-n16-seed3" / ".complete").is_file()
    for s in SPLITS:
        assert again[s]["caption"] == first[s]["caption"] and again[s]["events"] == first[s]["events"]
    D.corpus("soundworld", tmp_path, n=16, seed=4, workers=1)                 # another seed: another folder
    assert len(calls) == 2 and (tmp_path / "soundworld-n16-seed4").is_dir()
    assert D.corpus("soundworld", None, n=16, seed=3, workers=1)["test"]["caption"] == first["test"]["caption"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["soundworld-n16-seed3", "soundworld-n16-seed4"]


def test_default_workers_is_one_per_core_at_most_eight(monkeypatch):
    for cpus, want in [(None, 1), (1, 1), (4, 4), (64, 8)]:
        monkeypatch.setattr(D.os, "cpu_count", lambda: cpus)
        assert D.default_workers() == want


# ---------------------------------------------------------------- writes that a kill cannot tear
def test_a_folder_without_the_marker_is_made_again_whole(tmp_path, monkeypatch):
    "A corpus folder a killed write left (train/ written, no marker) is not read as done: it is generated and replaced."
    made = D.corpus("soundworld", tmp_path, n=16, seed=3, workers=1)
    folder = tmp_path / "soundworld-n16-seed3"
    whole = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    (folder / ".complete").unlink(); (folder / "test" / "metadata.csv").unlink()       # what an interrupted old-style write left
    calls = []
    real = D.CORPORA["soundworld"]
    monkeypatch.setitem(D.CORPORA, "soundworld", lambda **kw: calls.append(kw) or real(**kw))
    again = D.corpus("soundworld", tmp_path, n=16, seed=3, workers=1)
    assert len(calls) == 1 and again["test"]["caption"] == made["test"]["caption"]
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == whole   # byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["soundworld-n16-seed3"]                      # nothing beside it


def test_write_audiofolder_replaces_only_its_own_folders(tmp_path):
    ds = soundworld(n=16, seed=2)["train"]
    (tmp_path / "mine").mkdir(); (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="holds files that write_audiofolder did not write"):
        D.write_audiofolder(ds, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    D.write_audiofolder(ds, tmp_path / "mine", overwrite=True)
    assert not (tmp_path / "mine" / "notes.txt").exists() and D.load_clips(tmp_path / "mine")["train"]["caption"] == ds["caption"]
    D.write_audiofolder(ds.select(range(3)), tmp_path / "mine")        # its own folder (marker): replaced whole
    assert len(list((tmp_path / "mine").glob("*.wav"))) == 3
    (tmp_path / "empty").mkdir()
    D.write_audiofolder(ds, tmp_path / "empty")                         # an empty folder is fine


# ---------------------------------------------------------------- dataset-level bad input
@pytest.fixture
def clip_dir(tmp_path):
    good = audio_to_bytes(np.sin(np.arange(8000) / 4).astype(np.float32) * 0.3, 16000)
    d = tmp_path / "clips"; d.mkdir()
    for f in ("a.wav", "b.wav", "c.wav"): (d / f).write_bytes(good)
    (d / "sub").mkdir(); (tmp_path / "outside.wav").write_bytes(good)
    return d


def _meta(d, text, name="metadata.csv"):
    (d / name).write_bytes(text.encode() if isinstance(text, str) else text)
    return d


SKIPPED_ROWS = [   # (metadata row after a good first row, the reason it is skipped)
    ('a.wav,""', "empty caption"),
    ("a.wav,   ", "empty caption"),
    (",a caption with no file", "no file name"),
    ("../outside.wav,climbs out", "the file name '../outside.wav' leaves the folder"),
    ("sub/../../outside.wav,climbs out twice", "leaves the folder"),
    ("/etc/hostname,absolute", "is an absolute path"),
    ("C:\\clips\\x.wav,a drive", "is an absolute path"),
    ("b.wav,a tone", "the same file and caption as row 1"),
    ("c.wav,a tone, with a comma", "3 cells but the header has 2"),
    ("missing.wav,listed but absent", "no such file"),
    ("sub,a folder", "is a directory"),
]


@pytest.mark.parametrize("row,reason", SKIPPED_ROWS, ids=[r for _, r in SKIPPED_ROWS])
def test_a_bad_metadata_row_is_a_named_skip(clip_dir, row, reason):
    _meta(clip_dir, f"file_name,caption\nb.wav,a tone\n{row}\n")
    ds, skipped = D.load_clips(clip_dir, return_skipped=True)
    assert ds["train"]["caption"] == ["a tone"]                          # the good row is kept, nothing else lost
    assert len(skipped) == 1 and reason in skipped[0].reason and skipped[0].index == 1, skipped


def test_bad_jsonl_values_are_named_skips(clip_dir):
    _meta(clip_dir, "\n".join(json.dumps(r) for r in [{"file_name": "a.wav", "caption": "fine"}, {"file_name": "b.wav", "caption": 3},
                                                       {"file_name": "c.wav", "caption": None}, {"file_name": "c.wav", "caption": ["x"]},
                                                       {"file_name": 5, "caption": "a number"}, {"caption": "no file"}]) + "\n",
          "metadata.jsonl")
    ds, skipped = D.load_clips(clip_dir, return_skipped=True)
    assert ds["train"]["caption"] == ["fine"]
    assert [(s.index, s.reason) for s in skipped] == [(1, "the caption is not text but int 3"), (2, "no caption"),
                                                       (3, "the caption is not text but list ['x']"),
                                                       (4, "the file name 5 is not text but int"), (5, "no file name")]


def test_several_captions_for_one_clip_are_kept(clip_dir):
    _meta(clip_dir, "file_name,caption\na.wav,a tone\na.wav,a steady tone\na.wav,a tone\n")
    ds, skipped = D.load_clips(clip_dir, return_skipped=True)
    assert ds["train"]["caption"] == ["a tone", "a steady tone"] and [s.index for s in skipped] == [2]


def test_a_non_string_caption_column_in_a_dataset_is_a_named_skip():
    good = audio_to_bytes(np.zeros(800, np.float32) + 0.1, 16000)
    ds = Dataset.from_dict({"audio": [{"bytes": good, "path": "a.wav"}, {"bytes": good, "path": "b.wav"}], "caption": ["ok", None]},
                           features=Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "caption": Value("string")}))
    out, skipped = D.load_clips(ds, return_skipped=True)
    assert out["caption"] == ["ok"] and [(s.file, s.reason) for s in skipped] == [("b.wav", "no caption")]


UNUSABLE_FILES = [   # (metadata.csv contents, what the error says besides the file's name)
    ("", "is empty"),
    ("\n\n", "is empty"),
    ("name,caption\na.wav,x\n", "file column 'file_name' not found"),
    ("file_name,text\na.wav,x\n", "text column 'caption' not found"),
    ("file_name,caption,caption\na.wav,x,y\n", "names the column 'caption' twice"),
    (b"file_name,caption\na.wav,caf\xe9\n", "is not UTF-8 text"),
    ("file_name,caption\n../outside.wav,x\n/etc/hostname,y\n", "every row of"),
    ("file_name,caption,audio\na.wav,x,y\n", "has a column named 'audio'"),
]


@pytest.mark.parametrize("text,problem", UNUSABLE_FILES, ids=[p for _, p in UNUSABLE_FILES])
def test_an_unusable_metadata_file_is_a_clear_error_naming_it(clip_dir, text, problem):
    _meta(clip_dir, text)
    with pytest.raises(ValueError) as e:
        D.load_clips(clip_dir)
    assert problem in str(e.value) and "metadata.csv" in str(e.value), e.value


def test_unusable_jsonl_and_splits(clip_dir):
    _meta(clip_dir, '{"file_name": "a.wav", "caption": "x"}\n["a list"]\n', "metadata.jsonl")
    with pytest.raises(ValueError, match=r"metadata.jsonl: line 2 is a JSON list, not an object"):
        D.load_clips(clip_dir)
    _meta(clip_dir, '{"file_name": "a.wav", "caption": "x"}\n{not json\n', "metadata.jsonl")
    with pytest.raises(ValueError, match=r"metadata.jsonl: line 2 is not valid JSON"):
        D.load_clips(clip_dir)
    _meta(clip_dir, "file_name,caption\na.wav,x\n")
    with pytest.raises(ValueError, match="both metadata.csv and metadata.jsonl"):
        D.load_clips(clip_dir)
    (clip_dir / "metadata.jsonl").unlink()
    (clip_dir / "a.wav").write_bytes(b"")                               # the one clip of the split is broken
    with pytest.raises(ValueError, match=r"every clip of split 'train' was skipped; the first: .*a.wav: the file is empty"):
        D.load_clips(clip_dir)


def test_rows_are_checked_without_decoding_too(clip_dir):
    "check=False skips decoding, not the metadata rows: a path out of the folder is never handed on."
    _meta(clip_dir, "file_name,caption\na.wav,x\n../outside.wav,y\n")
    ds, skipped = D.load_clips(clip_dir, check=False, return_skipped=True)
    assert len(ds["train"]) == 1 and "leaves the folder" in skipped[0].reason
# ---------------------------------------------------------------- training pairs in bounded memory
def _train(data, **cfg):
    "Weights after a few steps of the tiny preset on `data` (a Dataset, a stream or a torch dataset)."
    from clapbook.model import CLAP, CLAP_PRESETS
    from clapbook.train import TrainConfig, train
    torch.manual_seed(0)
    m = CLAP(CLAP_PRESETS["tiny"])
    out_dir = cfg.pop("out_dir", None); resume = cfg.pop("resume", False); stop = cfg.pop("stop_at_step", None)
    train(m, data, TrainConfig(**{"max_steps": 5, "batch_size": 8, "progress": False, "scheduler": "constant", **cfg}),
          out_dir=out_dir, resume=resume, stop_at_step=stop)
    return m.state_dict()


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def pairs24():
    return soundworld(n=96, seed=3)["train"].select(range(24))            # 3 batches of 8 per epoch: 5 steps cross an epoch boundary


def test_pair_dataset_keeps_nothing_by_default_and_the_cache_is_bounded(sw):
    ds = sw["train"].select(range(10))
    plain = D.PairDataset(ds, 16000, 1.0)
    for i in range(len(ds)): plain[i]
    assert plain.cache is None                       # on demand: no clip is held between reads
    one_clip = 2 * 16000 * 4                         # a 2 s clip of float32 samples
    cached = D.PairDataset(ds, 16000, 1.0, cache_bytes=3 * one_clip)
    for i in range(len(ds)): cached[i]
    assert len(cached.cache) == 3 and cached.cache.nbytes <= 3 * one_clip
    assert all(torch.equal(plain[i][0], cached[i][0]) for i in range(len(ds)))


def test_same_weights_with_workers_and_with_a_cache(pairs24):
    "On-demand decoding in 0 or 2 DataLoader workers, or with a byte-bounded cache: bit-identical training."
    base = _train(pairs24)
    assert _same(base, _train(pairs24, num_workers=2))
    assert _same(base, _train(pairs24, data_cache_bytes=2 ** 20))      # room for a few clips: eviction happens
    assert _same(base, _train(pairs24, data_cache_bytes=2 ** 30))      # everything cached


def test_from_clapbook_train_import_pairdataset_still_works():
    from clapbook.train import PairDataset, collate_pairs
    assert PairDataset is D.PairDataset and collate_pairs is D.collate_pairs


def test_a_streaming_dataset_trains_the_same_with_workers_and_resumes_exactly(pairs24, tmp_path):
    "A datasets.IterableDataset (shuffled, several shards): 0 vs 2 workers identical; killed after 2 steps and resumed = uninterrupted."
    stream = pairs24.to_iterable_dataset(num_shards=3).shuffle(seed=1, buffer_size=12)
    base = _train(stream)
    assert _same(base, _train(stream, num_workers=2))
    _train(stream, out_dir=tmp_path / "run", stop_at_step=2)
    assert _same(base, _train(stream, out_dir=tmp_path / "run", resume=True))
    from clapbook.train import CHECKPOINT, load_checkpoint
    ck = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert ck["state"]["step"] == 5 and ck["state"]["epoch"] == 1    # 3 batches in epoch 0, then 2 of epoch 1


def test_a_stream_skips_a_clip_that_does_not_decode_without_moving_later_batches(pairs24, caplog):
    rows = [dict(r) for r in pairs24.select_columns(["audio", "caption"])]
    bad = [dict(r) for r in rows]; bad[1] = {"audio": {"bytes": b"not audio", "path": "broken.wav"}, "caption": "x"}
    good_batches = list(D.StreamingPairs(rows, 16000, 1.0, batch_size=8))
    with caplog.at_level(logging.WARNING, logger="clapbook.data"):
        got = list(D.StreamingPairs(bad, 16000, 1.0, batch_size=8))
    assert "row 1" in caplog.text and "broken.wav" in caplog.text
    assert [len(c) for _, c in got] == [7, 8, 8]
    assert got[0][1] == good_batches[0][1][:1] + good_batches[0][1][2:]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(got[1:], good_batches[1:]))
