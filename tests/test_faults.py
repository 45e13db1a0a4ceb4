"""Kill the real commands and see what is left: each test runs `python -m clapbook.cli ...` in a subprocess and
SIGKILLs it, either at a named point (chapter 0's `CLAPBOOK_FAULT=name:count` hook: `audiofolder:clip` while a
corpus's clips are written, `fill:<folder>` when a new folder is complete beside its name, `swap:<folder>` in the
middle of swapping it in, `write:<file>` when a file's new bytes sit in their temporary file) or at random times.
Then it reruns or resumes the command and checks that the run completes, that everything saved before the kill
still loads, that a corpus written after a kill is byte-identical to one never interrupted, and that nothing a
killed writer left behind survives the rerun. No file system is mocked: these are real kills of real processes."""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL") or os.name == "nt", reason="needs POSIX kills")

ENV = {**{k: v for k, v in os.environ.items() if k != "CLAPBOOK_FAULT"}, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
TEMP = re.compile(r"^\..+\.\d+-[0-9a-f]{6}-[0-9a-f]{8}\.(tmp|old)$")      # chapter 0's temporary names


def command(*args, fault: str | None = None) -> list:
    return [sys.executable, "-m", "clapbook.cli", *map(str, args)], {**ENV, **({"CLAPBOOK_FAULT": fault} if fault else {})}


def clapbook(*args, fault: str | None = None) -> subprocess.CompletedProcess:
    cmd, env = command(*args, fault=fault)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def completed(r):
    assert r.returncode == 0, r.stderr[-4000:]


def killed(r):
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr[-4000:])       # it died at the point, not before


def tree(folder: Path) -> dict:
    "Every file under `folder` (hidden ones too) and the sha256 of its bytes."
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list:
    "Temporary files and folders of killed writers anywhere under `folder`."
    return [str(p) for p in folder.rglob(".*") if TEMP.match(p.name)]


def weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- clapbook data
DATA = ("data", "soundworld", "--n", 48, "--workers", 1)


@pytest.fixture(scope="module")
def reference_corpus(tmp_path_factory):
    "The corpus `clapbook data soundworld --n 48` writes, written once without interruption (in this process)."
    from clapbook.data import write_corpus
    folder = write_corpus("soundworld", tmp_path_factory.mktemp("reference") / "sw", n=48, seed=0, sample_rate=16000,
                          seconds=2.0, workers=1)
    return tree(folder)


def test_data_killed_while_writing_clips(tmp_path, reference_corpus):
    out = tmp_path / "sw"
    killed(clapbook(*DATA, "--out", out, fault="audiofolder:clip:20"))        # 20 of 48 clips written
    assert not out.exists()                                                   # no half corpus under the name
    assert leftovers(tmp_path)                                                # (the half-written one beside it)
    completed(clapbook(*DATA, "--out", out))
    assert tree(out) == reference_corpus and not leftovers(tmp_path)        # byte for byte, and tidied


@pytest.mark.parametrize("point", ["audiofolder:clip:30", "fill:sw:1", "swap:sw:1"])
def test_data_killed_while_replacing_a_corpus(tmp_path, reference_corpus, point):
    from clapbook.data import load_clips
    out = tmp_path / "sw"
    completed(clapbook(*DATA, "--seed", 1, "--out", out))                     # an earlier corpus in the folder
    before = tree(out)
    killed(clapbook(*DATA, "--out", out, fault=point))
    now = tree(out)
    assert now == (reference_corpus if point.startswith("swap") else before)   # whole: the old one, or (swapped) the new
    assert len(load_clips(out)["train"]) > 0
    completed(clapbook(*DATA, "--out", out))
    assert tree(out) == reference_corpus and not leftovers(tmp_path)


def test_data_killed_at_random_times(tmp_path, reference_corpus):
    "Three kills at random moments of a run (timed from an uninterrupted one): the folder is always absent or whole."
    out, rng = tmp_path / "sw", random.Random(23)
    t0 = time.perf_counter(); completed(clapbook(*DATA, "--out", tmp_path / "timing")); full = time.perf_counter() - t0
    for _ in range(3):
        cmd, env = command(*DATA, "--out", out)
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * full)
        p.send_signal(signal.SIGKILL); p.wait()
        assert not out.exists() or tree(out) == reference_corpus                # never a part of one
        completed(clapbook(*DATA, "--out", out))
        assert tree(out) == reference_corpus and not leftovers(tmp_path)


# ---------------------------------------------------------------- clapbook train
@pytest.fixture(scope="module")
def train_args(tmp_path_factory):
    from clapbook.data import write_corpus
    d = tmp_path_factory.mktemp("train")
    data = write_corpus("soundworld", d / "sw", n=48, seed=0, workers=1)
    (d / "config.json").write_text(json.dumps({"train": {"log_every": 1}}))
    return ("train", "--data", data, "--valid-data", data, "--valid-split", "valid", "--batch-size", 4, "--epochs", 2,
            "--checkpoint-every", 2, "--lr", 1e-3, "--device", "cpu", "--config", d / "config.json")   # 4 steps an epoch, 8 in all


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, train_args):
    "A run that was never interrupted: what every killed-and-resumed run must end with."
    out = tmp_path_factory.mktemp("finished") / "run"
    completed(clapbook(*train_args, "--out", out))
    return out


def _log_steps(out: Path) -> list:
    return [json.loads(l)["step"] for l in (out / "log.jsonl").read_text().splitlines() if json.loads(l)["kind"] == "train"]


def test_train_killed_while_saving_a_checkpoint(tmp_path, train_args, finished_run):
    from clapbook.train import CHECKPOINT, load_checkpoint
    out = tmp_path / "run"
    killed(clapbook(*train_args, "--out", out, fault="write:last.safetensors:2"))    # saving the step-4 checkpoint
    assert load_checkpoint(out / CHECKPOINT)["state"]["step"] == 2                    # the step-2 one is whole
    assert leftovers(out)
    completed(clapbook(*train_args, "--out", out, "--resume"))
    assert same_weights(weights(out / "last"), weights(finished_run / "last"))       # bit for bit, as never killed
    assert same_weights(weights(out / "best"), weights(finished_run / "best"))
    assert _log_steps(out) == _log_steps(finished_run) and not leftovers(out)        # no step logged twice


@pytest.mark.parametrize("point", ["swap:best:1", "swap:last:1"])
def test_train_killed_while_swapping_in_a_model(tmp_path, train_args, finished_run, point):
    "A second run into a finished run's folder, killed in the middle of replacing best/ (first epoch) or last/ (the end)."
    from clapbook.model import CLAP
    from clapbook.train import CHECKPOINT, load_checkpoint
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    killed(clapbook(*train_args, "--out", out, fault=point))
    for name in ("best", "last"): CLAP.from_pretrained(out / name)                    # both load, whole
    assert load_checkpoint(out / CHECKPOINT)["state"]["step"] == (4 if "best" in point else 8)
    completed(clapbook(*train_args, "--out", out, "--resume"))
    assert same_weights(weights(out / "last"), weights(finished_run / "last")) and not leftovers(out)


# ---------------------------------------------------------------- clapbook embed
@pytest.fixture(scope="module")
def model_and_clips(tmp_path_factory):
    from clapbook.model import CLAP, CLAP_PRESETS
    from clapbook.sounds import soundworld
    d = tmp_path_factory.mktemp("saved")
    torch.manual_seed(0)
    CLAP(CLAP_PRESETS["tiny"]).save_pretrained(d / "model")
    test = soundworld(n=48, seed=5)["test"]
    files = []
    for i in range(4):
        (d / "pool").mkdir(exist_ok=True)
        files.append(d / "pool" / f"c{i}.wav"); files[-1].write_bytes(test[i]["audio"]["bytes"])
    (d / "captions.txt").write_text("\n".join(test["caption"][:6]))
    return d, files


@pytest.mark.parametrize("name", ["e.npy", "e.parquet"])
def test_embed_killed_while_writing(tmp_path, model_and_clips, name):
    import pandas as pd
    d, files = model_and_clips
    out = tmp_path / name
    read = (lambda: np.load(out)) if name.endswith(".npy") else (lambda: np.stack(pd.read_parquet(out)["embedding"]))
    completed(clapbook("embed", "--checkpoint", d / "model", "--out", out, *files[:2]))
    before = read()
    killed(clapbook("embed", "--checkpoint", d / "model", "--out", out, *files, fault=f"write:{name}:1"))
    np.testing.assert_array_equal(read(), before)                                    # the earlier embeddings, whole
    completed(clapbook("embed", "--checkpoint", d / "model", "--out", out, *files))
    assert read().shape == (4, 256) and not leftovers(tmp_path)


# ---------------------------------------------------------------- clapbook curate
def test_curate_killed_while_writing_the_manifest(tmp_path, model_and_clips):
    from clapbook.data import load_clips
    d, _ = model_and_clips
    args = ("curate", "--teacher", d / "model", "--audio", d / "pool", "--captions", d / "captions.txt", "--strategy", "du",
            "--out", tmp_path / "cur", "--quiet")
    completed(clapbook(*args, "--threshold", "-1"))
    before = (tmp_path / "cur" / "metadata.csv").read_text()
    killed(clapbook(*args, "--threshold", "-1", "--k", "2", fault="write:metadata.csv:1"))
    assert (tmp_path / "cur" / "metadata.csv").read_text() == before                # the earlier manifest, whole
    assert len(load_clips(tmp_path / "cur")["train"]) == 4                           # and it still loads
    completed(clapbook(*args, "--threshold", "-1", "--k", "2"))
    assert len(load_clips(tmp_path / "cur")["train"]) == 8 and not leftovers(tmp_path)


# ---------------------------------------------------------------- clapbook quickstart
QUICK = ("quickstart", "--n", 256, "--epochs", 1, "--workers", 1, "--quiet", "--keep-data")   # keep the corpora to compare them


@pytest.mark.slow
def test_quickstart_killed_making_the_corpora_then_at_its_metrics(tmp_path):
    "Killed while the first corpus's clips are written, rerun (corpora byte-identical to ones never interrupted); then killed writing metrics.json."
    from clapbook.data import corpus
    from clapbook.model import CLAP
    out = tmp_path / "qs"
    killed(clapbook(*QUICK, "--out", out, fault="audiofolder:clip:100"))
    assert not any(p.is_dir() and not p.name.startswith(".") for p in (out / "data").iterdir())   # no corpus folder yet
    completed(clapbook(*QUICK, "--out", out))
    for name in ("soundworld", "instruments"):
        corpus(name, tmp_path / "reference", n=256, seed=0, workers=1)
        assert tree(out / "data" / f"{name}-n256-seed0") == tree(tmp_path / "reference" / f"{name}-n256-seed0"), name
    metrics = json.loads((out / "metrics.json").read_text())
    report = (out / "report.html").read_bytes()
    killed(clapbook(*QUICK, "--out", out, fault="write:metrics.json:1"))
    assert json.loads((out / "metrics.json").read_text()) == metrics and (out / "report.html").read_bytes() == report
    CLAP.from_pretrained(out / "model")
    completed(clapbook(*QUICK, "--out", out))
    assert set(json.loads((out / "metrics.json").read_text())["zero_shot_accuracy"]) == {"soundworld", "instruments"}
    assert not leftovers(out)
