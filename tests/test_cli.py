"""The `clapbook` command: help, data, zeroshot, embed, eval on a small saved model; reproduce's dispatch."""
import hashlib, importlib, inspect, json, re, subprocess, sys, types

from pathlib import Path

import numpy as np
import pytest
import torch

from clapbook.cli import EXPERIMENTS, main
from clapbook.model import CLAP, CLAP_PRESETS
from clapbook.sounds import soundworld


def run(*args):
    return subprocess.run([sys.executable, "-m", "clapbook.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    CLAP(CLAP_PRESETS["tiny"]).save_pretrained(d / "model")
    test = soundworld(n=48, seed=5)["test"]
    files = []
    for i in range(3):
        (d / f"c{i}.wav").write_bytes(test[i]["audio"]["bytes"]); files.append(str(d / f"c{i}.wav"))
    return d, files


def test_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0
    for cmd in ["data", "quickstart", "train", "eval", "embed", "zeroshot", "demo", "reproduce", "curate", "convert", "caption"]:
        assert cmd in r.stdout


def test_data_same_seed_same_bytes(tmp_path):
    digests = []
    for out in ("a", "b"):
        main(["data", "soundworld", "--out", str(tmp_path / out), "--n", "32", "--seed", "7"])
        files = sorted(p for p in (tmp_path / out).rglob("*") if p.is_file())
        digests.append([(p.relative_to(tmp_path / out).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files])
    assert digests[0] == digests[1] and any(n.endswith("metadata.csv") for n, _ in digests[0])


def test_zeroshot_json(saved):
    d, files = saved
    r = run("zeroshot", "--checkpoint", str(d / "model"), "--labels", "bell,siren,rain", "--json", *files)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [o["file"] for o in out] == files
    for o in out:
        assert set(o["probabilities"]) == {"bell", "siren", "rain"}
        assert abs(sum(o["probabilities"].values()) - 1) < 1e-4
        assert o["label"] == max(o["probabilities"], key=o["probabilities"].get)


def test_zeroshot_reports_a_bad_file_and_keeps_the_rest(saved, tmp_path):
    d, files = saved
    bad = tmp_path / "broken.wav"; bad.write_text("not audio")
    r = run("zeroshot", "--checkpoint", str(d / "model"), "--labels", "bell,siren", "--json", files[0], str(bad))
    assert r.returncode == 1
    assert "broken.wav" in r.stderr and "not a readable audio file" in r.stderr
    assert [o["file"] for o in json.loads(r.stdout)] == [files[0]]


def test_zeroshot_needs_two_labels(saved):
    d, files = saved
    r = run("zeroshot", "--checkpoint", str(d / "model"), "--labels", "bell", files[0])
    assert r.returncode != 0 and "two" in r.stderr


def test_embed_npy_and_parquet(saved, tmp_path):
    d, files = saved
    main(["embed", "--checkpoint", str(d / "model"), "--out", str(tmp_path / "e.npy"), *files])
    e = np.load(tmp_path / "e.npy")
    assert e.shape == (3, 256)
    np.testing.assert_allclose(e, CLAP.from_pretrained(d / "model").embed_audio(files).numpy(), atol=1e-6)
    (tmp_path / "t.txt").write_text("a bell\na siren\n")
    main(["embed", "--checkpoint", str(d / "model"), "--texts", str(tmp_path / "t.txt"), "--out", str(tmp_path / "t.parquet")])
    import pandas as pd
    df = pd.read_parquet(tmp_path / "t.parquet")
    assert list(df["name"]) == ["a bell", "a siren"] and len(df["embedding"][0]) == 256
    main(["embed", "--checkpoint", str(d / "model"), "--out", str(tmp_path / "b.npy"), "--precision", "bf16", *files])
    b = np.load(tmp_path / "b.npy")
    np.testing.assert_allclose(b, CLAP.from_pretrained(d / "model").embed_audio(files, precision="bf16").numpy(), atol=1e-6)
    assert (b * e).sum(-1).min() > 0.99                           # unit rows: the cosine to the fp32 embeddings


def test_eval_on_an_audiofolder(saved, tmp_path):
    d, _ = saved
    main(["data", "soundworld", "--out", str(tmp_path / "sw"), "--n", "48", "--seed", "1"])
    r = run("eval", "--checkpoint", str(d / "model"), "--data", str(tmp_path / "sw"), "--split", "test", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert 0 <= out["zero_shot"]["accuracy"] <= 1 and "text_to_audio/R@1" in out["retrieval"]


def _stub_experiment(monkeypatch, name):
    "Stand in for clapbook.experiments.<name>: record what `run` is called with."
    seen = {}
    stub = types.ModuleType(f"clapbook.experiments.{name}")
    stub.run = lambda **kw: seen.update(kw) or {}
    monkeypatch.setitem(sys.modules, stub.__name__, stub)
    return seen


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_reproduce_calls_the_experiment_modules_run(monkeypatch, tmp_path, capsys, name):
    seen = _stub_experiment(monkeypatch, name)
    main(["reproduce", name, "--seeds", "4", "5", "--size", "full", "--device", "cuda", "--out", str(tmp_path)])
    assert seen == dict(size="full", seeds=(4, 5), out_dir=str(tmp_path), device="cuda", progress=True,
                        command=f"clapbook reproduce {name} --seeds 4 5 --size full --device cuda --out {tmp_path}")
    assert str(tmp_path / f"{name}.json") in capsys.readouterr().out


def test_reproduce_defaults_and_choices(monkeypatch):
    seen = _stub_experiment(monkeypatch, "curation")
    main(["reproduce", "curation", "--quiet"])
    assert seen["size"] == "tiny" and seen["seeds"] == (0, 1, 2) and seen["out_dir"] == "experiments/results"
    assert seen["device"] == "cpu" and seen["progress"] is False
    for bad in (["reproduce", "curation", "--size", "small"], ["reproduce", "nothing"]):
        with pytest.raises(SystemExit):
            main(bad)


def test_every_experiment_module_has_the_run_contract():
    # green once the experiments layer (clapbook.experiments) is in the package
    pytest.importorskip("clapbook.experiments")
    for name in EXPERIMENTS:
        params = inspect.signature(importlib.import_module(f"clapbook.experiments.{name}").run).parameters
        assert {"size", "seeds", "out_dir", "device", "command", "progress"} <= set(params), name


def test_demo_dry_run_writes_the_notebook_and_prints_the_voila_command(saved, tmp_path, capsys):
    import nbformat
    d, _ = saved
    main(["demo", "--checkpoint", str(d / "model"), "--folder", str(tmp_path), "--port", "9123", "--n", "8", "--dry-run"])
    out = capsys.readouterr().out
    nb = nbformat.read(tmp_path / "clapbook_demo.ipynb", as_version=4)
    assert any(str(d / "model") in c.source for c in nb.cells if c.cell_type == "code")     # the demo loads this model
    line = [l for l in out.splitlines() if l.startswith("$ ")][0]
    assert "-m voila" in line and "--port=9123" in line and "--progressive_rendering=True" in line
    with pytest.raises(SystemExit, match="no saved model in"):
        main(["demo", "--checkpoint", str(tmp_path / "nothing"), "--dry-run"])


# ---------------------------------------------------------------- one line per error, every command
def _one_line_error(r, *names):
    "The command failed with exit status 1 and one line on stderr (besides progress bars) that names each of `names`, and no traceback."
    lines = [l for l in r.stderr.splitlines() if l.strip() and not re.search(r"\d+%\|", l)]
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    for n in names: assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def test_data_error_is_one_line(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    line = _one_line_error(run("data", "soundworld", "--out", str(tmp_path / "taken"), "--n", "8", "--workers", "1"), tmp_path / "taken")
    assert "not a folder" in line and (tmp_path / "taken").read_text() == "a file, not a folder"


def test_quickstart_on_a_locked_folder_is_one_line(tmp_path):
    from clapbook.files import folder_lock
    with folder_lock(tmp_path / "qs"):                                    # another run holds the folder
        line = _one_line_error(run("quickstart", "--out", str(tmp_path / "qs"), "--n", "32", "--quiet"), tmp_path / "qs")
    assert "is being written by pid" in line


def test_train_error_is_one_line(tmp_path):
    _one_line_error(run("train", "--data", str(tmp_path / "no-such-folder"), "--out", str(tmp_path / "run")), tmp_path / "no-such-folder")


def test_train_resume_without_a_checkpoint_is_one_line(tmp_path):
    main(["data", "soundworld", "--out", str(tmp_path / "sw"), "--n", "32", "--workers", "1"])
    line = _one_line_error(run("train", "--data", str(tmp_path / "sw"), "--out", str(tmp_path / "run"), "--resume",
                               "--batch-size", "4", "--max-steps", "1"), tmp_path / "run")
    assert "no checkpoint to resume from" in line


def test_train_bad_options_are_one_line(tmp_path):
    main(["data", "soundworld", "--out", str(tmp_path / "sw"), "--n", "32", "--workers", "1"])
    line = _one_line_error(run("train", "--data", str(tmp_path / "sw"), "--out", str(tmp_path / "run"), "--batch-size", "500"))
    assert "fewer than one batch of 500" in line


def test_eval_error_is_one_line(tmp_path):
    _one_line_error(run("eval", "--checkpoint", str(tmp_path / "missing"), "--data", str(tmp_path)), tmp_path / "missing")


def test_embed_on_a_bad_file_is_one_line(saved, tmp_path):
    d, files = saved
    (tmp_path / "notes.wav").write_text("not audio")
    line = _one_line_error(run("embed", "--checkpoint", str(d / "model"), "--out", str(tmp_path / "e.npy"), files[0],
                               str(tmp_path / "notes.wav")), tmp_path / "notes.wav")
    assert line.startswith("skipped ") and "not a readable audio file" in line      # named, skipped; the good clip is written
    assert np.load(tmp_path / "e.npy").shape[0] == 1


def test_embed_on_a_full_disk_is_one_line(saved, tmp_path):
    "A write the kernel refuses (here the file-size limit, which fails a write like a full disk) names the file; nothing half-written is left."
    resource = pytest.importorskip("resource")
    d, files = saved
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))   # 3 x 256 float32 do not fit
    r = subprocess.run([sys.executable, "-m", "clapbook.cli", "embed", "--checkpoint", str(d / "model"), "--out", str(tmp_path / "e.npy"),
                        *files], capture_output=True, text=True, timeout=600, preexec_fn=limit)
    line = _one_line_error(r, tmp_path / "e.npy")
    assert "File too large" in line and list(tmp_path.iterdir()) == []


def test_zeroshot_error_is_one_line(saved, tmp_path):
    _, files = saved
    _one_line_error(run("zeroshot", "--checkpoint", str(tmp_path / "missing"), "--labels", "a,b", files[0]), tmp_path / "missing")


def test_demo_error_is_one_line(tmp_path):
    _one_line_error(run("demo", "--checkpoint", str(tmp_path / "missing"), "--dry-run"), tmp_path / "missing")


def test_reproduce_error_is_one_line(tmp_path):
    (tmp_path / "results").write_text("a file where the results folder should be")
    _one_line_error(run("reproduce", "temporal", "--size", "test", "--out", str(tmp_path / "results")), tmp_path / "results")


def test_curate_bad_labels_are_one_line(saved, tmp_path):
    d, files = saved
    (tmp_path / "caps.txt").write_text("a bell\nrain\n")
    line = _one_line_error(run("curate", "--teacher", str(d / "model"), "--audio", str(d), "--captions", str(tmp_path / "caps.txt"),
                               "--strategy", "ads", "--labels", " , ", "--out", str(tmp_path / "cur")))
    assert "labels" in line


def test_caption_error_is_one_line(saved, tmp_path):
    _, files = saved
    _one_line_error(run("caption", "--checkpoint", str(tmp_path / "missing"), files[0]), tmp_path / "missing")


def test_convert_error_is_one_line(tmp_path):
    _one_line_error(run("convert", str(tmp_path / "missing.pt"), str(tmp_path / "out")), tmp_path / "missing.pt")
# ---------------------------------------------------------------- folders: skipped files named, the rest written, exit 1
@pytest.fixture(scope="module")
def messy_tree(tmp_path_factory):
    "A folder tree: good WAV and FLAC clips at two depths, a text file named .wav, an empty .wav, a WAV cut short, a .txt."
    import soundfile as sf
    from clapbook.audio import audio_to_bytes
    d = tmp_path_factory.mktemp("tree") / "recordings"
    (d / "day1" / "am").mkdir(parents=True); (d / "day2").mkdir()
    test = soundworld(n=48, seed=9)["test"]
    good = [d / "day1" / "a.wav", d / "day1" / "am" / "b.wav", d / "day2" / "c.flac", d / "d.wav"]
    for i, p in enumerate(good):
        wave, sr = sf.read(__import__("io").BytesIO(test[i]["audio"]["bytes"]), dtype="float32")
        sf.write(p, wave, sr)
    (d / "day2" / "corrupt.wav").write_text("<html>404 not found</html>")
    (d / "day1" / "empty.wav").write_bytes(b"")
    whole = audio_to_bytes(np.zeros(16000, np.float32), 16000); (d / "day2" / "cut.wav").write_bytes(whole[: len(whole) // 2])
    (d / "notes.txt").write_text("not audio, not an audio extension: ignored")
    return d, sorted(str(p) for p in good), {"corrupt.wav": "not a readable audio file", "empty.wav": "empty", "cut.wav": "truncated"}


def test_embed_a_folder_names_each_skipped_file_writes_the_rest_and_exits_1(saved, messy_tree, tmp_path):
    import pandas as pd
    d, _ = saved
    tree, good, bad = messy_tree
    r = run("embed", "--checkpoint", str(d / "model"), "--out", str(tmp_path / "e.parquet"), str(tree))
    assert r.returncode == 1, r.stderr
    for name, reason in bad.items():
        line = next(l for l in r.stderr.splitlines() if name in l)
        assert line.startswith("skipped ") and reason in line, line
    assert "notes.txt" not in r.stderr and "embedding" in r.stderr          # ignored by extension; the progress bar
    df = pd.read_parquet(tmp_path / "e.parquet")
    assert sorted(df["file"]) == good and list(df.columns) == ["file", "embedding"]
    want = CLAP.from_pretrained(d / "model").embed_audio(list(df["file"])).numpy()
    np.testing.assert_allclose(np.stack(df["embedding"]), want, atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary file left beside it


def test_embed_exits_0_when_nothing_was_skipped(saved, messy_tree, tmp_path):
    d, _ = saved
    tree, good, _ = messy_tree
    r = run("embed", "--checkpoint", str(d / "model"), "--out", str(tmp_path / "e.parquet"), "--quiet", str(tree / "day1" / "am"), good[0])
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ""                                          # --quiet: no progress bar either


def test_zeroshot_embeds_the_prompts_once_and_the_audio_in_batches(saved, messy_tree, tmp_path, monkeypatch):
    d, _ = saved
    tree, good, bad = messy_tree
    calls = {"text": 0, "audio": 0}
    real_text, real_audio = CLAP.embed_text, CLAP.embed_audio
    monkeypatch.setattr(CLAP, "embed_text", lambda self, *a, **k: calls.__setitem__("text", calls["text"] + 1) or real_text(self, *a, **k))
    monkeypatch.setattr(CLAP, "embed_audio", lambda self, *a, **k: calls.__setitem__("audio", calls["audio"] + 1) or real_audio(self, *a, **k))
    with pytest.raises(SystemExit) as e:
        main(["zeroshot", "--checkpoint", str(d / "model"), "--labels", "bell,siren,rain,dog", "--batch-size", "2", "--quiet",
              "--top-k", "2", "--out", str(tmp_path / "z.json"), str(tree)])
    assert e.value.code == 1
    assert calls == {"text": 1, "audio": 2}                                 # 4 good files in batches of 2
    out = json.loads((tmp_path / "z.json").read_text())
    assert sorted(r["file"] for r in out["results"]) == good
    assert sorted(Path(s["file"]).name for s in out["skipped"]) == sorted(bad)
    for r in out["results"]:
        assert len(r["top"]) == 2 and r["top"][0]["label"] == r["label"] and r["top"][0]["score"] >= r["top"][1]["score"]
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-5


def test_zeroshot_multi_label_is_a_sigmoid_of_the_scaled_cosine(saved, messy_tree, tmp_path):
    d, _ = saved
    _, good, _ = messy_tree
    labels = ["bell", "siren", "rain"]
    r = run("zeroshot", "--checkpoint", str(d / "model"), "--labels", ",".join(labels), "--multi-label", "--json", "--quiet", *good[:2])
    assert r.returncode == 0, r.stderr
    m = CLAP.from_pretrained(d / "model")
    cos = m.similarity(m.embed_audio(good[:2]), m.embed_text([f"this is a sound of {l}" for l in labels]))
    want = torch.sigmoid(float(m.logit_scale) * cos)
    got = torch.tensor([[o["probabilities"][l] for l in labels] for o in json.loads(r.stdout)])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_long_audio_flags_reach_the_embeddings(saved, tmp_path):
    import soundfile as sf
    d, _ = saved
    wave = (0.1 * np.random.default_rng(0).standard_normal(16000 * 7)).astype(np.float32)
    sf.write(tmp_path / "long.wav", wave, 16000, subtype="FLOAT")
    m = CLAP.from_pretrained(d / "model")
    for flags, kw in (([], {}), (["--long-audio", "crop"], {"long_audio": "crop"}),
                      (["--window-seconds", "1", "--hop-seconds", "0.5"], {"window_seconds": 1.0, "hop_seconds": 0.5})):
        main(["embed", "--checkpoint", str(d / "model"), "--out", str(tmp_path / "e.npy"), "--quiet", *flags, str(tmp_path / "long.wav")])
        np.testing.assert_allclose(np.load(tmp_path / "e.npy"), m.embed_audio(wave, **kw).numpy(), atol=1e-6)
    main(["demo", "--checkpoint", str(d / "model"), "--folder", str(tmp_path / "demo"), "--hop-seconds", "1", "--dry-run"])
    assert "audio_options={'hop_seconds': 1.0}" in (tmp_path / "demo" / "clapbook_demo.ipynb").read_text()


def test_eval_on_a_folder_with_a_corrupt_clip_writes_per_clip_rows_and_exits_1(saved, tmp_path):
    import pandas as pd
    d, _ = saved
    main(["data", "soundworld", "--out", str(tmp_path / "sw"), "--n", "48", "--seed", "1"])
    clips = sorted((tmp_path / "sw" / "test").glob("*.wav"))
    clips[0].write_text("garbage")
    r = run("eval", "--checkpoint", str(d / "model"), "--data", str(tmp_path / "sw"), "--split", "test", "--json",
            "--out", str(tmp_path / "rows.parquet"))
    assert r.returncode == 1
    assert any(clips[0].name in l and "not a readable audio file" in l for l in r.stderr.splitlines() if l.startswith("skipped"))
    out = json.loads(r.stdout)
    assert out["skipped"] == 1 and out["clips"] == len(clips) - 1 and "accuracy" in out["zero_shot"]
    rows = pd.read_parquet(tmp_path / "rows.parquet")
    assert len(rows) == len(clips) - 1 and clips[0].name not in " ".join(rows["file"])
    assert set(rows.columns) == {"file", "label", "predicted", "score"} and rows["file"].str.endswith(".wav").all()
