"""The Hub and `--checkpoint`: clapbook models by repository id, published checkpoints converted once, fine-tuning a
converted model, and `clapbook.zero_shot`.

What is real here and what is a stand-in. Every Hub request goes through `huggingface_hub`'s own code: the cache
layout `snapshot_download` reads offline (`models--OWNER--NAME/snapshots/COMMIT/...`, `refs/main`), and, against
`FakeHub` (an HTTP server on 127.0.0.1 standing in for huggingface.co), `create_repo`, `upload_folder`'s preupload
and commit requests, and `snapshot_download`'s revision, tree and resolve requests, which write the real cache.
`FakeHub` implements only those endpoints: it answers every preupload with "regular" (files inline in the commit),
so the LFS/Xet transfer of large files is not exercised (the subprocesses run with HF_HUB_DISABLE_XET=1), nor are
authentication, private repositories or revisions other than main.
"""
import base64, hashlib, json, math, os, shutil, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import torch

from clapbook.model import CLAP, CLAP_PRESETS
from clapbook import pretrained as P

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    "A Hugging Face Hub endpoint on 127.0.0.1 with what create_repo, upload_folder (regular uploads) and snapshot_download use."
    def __init__(self):
        self.repos, self.log = {}, []               # repo id -> {"sha", "files": {path: bytes}}; (method, path) requests
        hub = self
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def send(self, code, body=b"", headers=None, ctype="application/json"):
                if isinstance(body, (dict, list)): body = json.dumps(body).encode()
                self.send_response(code); self.send_header("Content-Type", ctype); self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items(): self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD": self.wfile.write(body)
            def body(self): return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            def do_POST(self): hub.handle(self, "POST")
            def do_GET(self): hub.handle(self, "GET")
            def do_HEAD(self): hub.handle(self, "HEAD")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, h, method):
        path = unquote(urlparse(h.path).path); parts = path.strip("/").split("/")
        self.log.append((method, path))
        missing = lambda what: h.send(404, {"error": f"{what} not found"}, {"X-Error-Code": "RepoNotFound" if what == "repo" else "EntryNotFound"})
        if method == "POST" and path == "/api/repos/create":
            b = json.loads(h.body()); rid = f"{b['organization']}/{b['name']}" if b.get("organization") else b["name"]
            self.repos.setdefault(rid, {"sha": None, "files": {}})
            return h.send(200, {"url": f"{self.url}/{rid}", "name": rid, "id": rid})
        if parts[:2] == ["api", "models"] and len(parts) >= 6:
            rid, kind, repo = "/".join(parts[2:4]), parts[4], self.repos.get("/".join(parts[2:4]))
            if repo is None or (kind in ("revision", "tree") and repo["sha"] is None): return missing("repo")
            if kind == "preupload":
                files = json.loads(h.body())["files"]
                return h.send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
            if kind == "commit":
                for line in h.body().decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file": repo["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                repo["sha"] = hashlib.sha1(repr(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in repo["files"].items())).encode()).hexdigest()
                return h.send(200, {"commitUrl": f"{self.url}/{rid}/commit/{repo['sha']}", "commitOid": repo["sha"], "pullRequestUrl": None})
            if kind == "revision":
                return h.send(200, {"id": rid, "modelId": rid, "sha": repo["sha"], "private": False,
                                    "siblings": [{"rfilename": p} for p in sorted(repo["files"])]})
            if kind == "tree":
                return h.send(200, [{"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                                    for p, b in sorted(repo["files"].items())])
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, name = self.repos.get("/".join(parts[:2])), "/".join(parts[4:])
            if repo is None or name not in repo["files"]: return missing("entry")
            b = repo["files"][name]
            return h.send(200, b, {"X-Repo-Commit": repo["sha"], "ETag": f'"{hashlib.sha1(b).hexdigest()}"'}, "application/octet-stream")
        return h.send(404, {"error": f"not served by FakeHub: {method} {path}"})


def _python(code, env, check=True):
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    if check: assert r.returncode == 0, r.stderr[-3000:]
    return r


def _wave(sr, seconds=1.5, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(sr * seconds))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_saved(tmp_path_factory):
    torch.manual_seed(0)
    m = CLAP(CLAP_PRESETS["tiny"])
    return m, m.save_pretrained(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    "A small random Hugging Face ClapModel folder (HTS-AT with the published 256 spec size, RoBERTa text), as chapter 16 builds it."
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel
    from clapbook.text import load_roberta_tokenizer
    tok = load_roberta_tokenizer()
    torch.manual_seed(0)
    hf = ClapModel(ClapConfig(
        audio_config=dict(hidden_size=128, spec_size=256, patch_embeds_hidden_size=16, depths=[2, 2, 2, 2],
                          num_attention_heads=[1, 2, 4, 8], projection_dim=32, enable_fusion=False),
        text_config=dict(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=1, intermediate_size=128,
                         max_position_embeddings=80, projection_dim=32, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id), projection_dim=32)).eval()
    with torch.no_grad():
        bn = hf.audio_model.audio_encoder.batch_norm
        bn.running_mean.normal_(-40, 10); bn.running_var.uniform_(50, 200); hf.logit_scale_a.fill_(math.log(20.0))
    d = tmp_path_factory.mktemp("hf") / "hf-clap"
    hf.save_pretrained(d); tok.save_pretrained(d)
    ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad", frequency_min=50, frequency_max=14000).save_pretrained(d)
    return d


def _hub_cache(root, repo_id, folder):
    "The layout snapshot_download reads: models--OWNER--NAME/snapshots/COMMIT/<files> and refs/main naming COMMIT."
    repo = root / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(); (repo / "refs" / "main").write_text(COMMIT)
    return root


# ---------------------------------------------------------------- a clapbook model by repository id
def test_the_download_patterns_take_every_file_save_pretrained_writes(tiny_saved):
    from huggingface_hub.utils import filter_repo_objects
    _, folder = tiny_saved
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert any(f.startswith("text/") for f in files)
    assert sorted(filter_repo_objects(files, allow_patterns=P.HF_FILES)) == files
    without_text = [p for p in P.HF_FILES if p != "text/*"]        # the patterns before: the tokenizer was never fetched
    assert not any(f.startswith("text/") for f in filter_repo_objects(files, allow_patterns=without_text))


def test_a_clapbook_model_loads_by_repo_id_from_a_local_hub_cache(tiny_saved, tmp_path, monkeypatch):
    "Offline (HF_HUB_OFFLINE=1, set by conftest): snapshot_download finds the snapshot through refs/main; no loader is mocked."
    import huggingface_hub.constants as C
    model, folder = tiny_saved
    hub = _hub_cache(tmp_path / "hub", "someone/tiny-clap", folder)
    wave = _wave(model.sample_rate)
    want = model.embed_audio(wave)
    assert torch.equal(P.load_pretrained("someone/tiny-clap", cache_dir=hub).embed_audio(wave), want)
    monkeypatch.setattr(C, "HF_HUB_CACHE", str(hub))                  # the default cache location
    assert torch.equal(P.load_pretrained("someone/tiny-clap").embed_audio(wave), want)
    with pytest.raises(P.CheckpointError, match="not in the local Hugging Face cache"):
        P.load_pretrained("someone/not-there", cache_dir=hub)


def test_the_command_line_takes_a_repo_id_as_checkpoint(tiny_saved, tmp_path):
    model, folder = tiny_saved
    hub = _hub_cache(tmp_path / "hub", "someone/tiny-clap", folder)
    import soundfile as sf
    sf.write(tmp_path / "a.wav", _wave(16000), 16000)
    r = subprocess.run([sys.executable, "-m", "clapbook.cli", "zeroshot", "--checkpoint", "someone/tiny-clap", "--labels", "bell,rain",
                        "--json", str(tmp_path / "a.wav")], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1", "CLAPBOOK_CACHE": str(tmp_path / "cb")})
    assert r.returncode == 0, r.stderr
    assert [o["file"] for o in json.loads(r.stdout)] == [str(tmp_path / "a.wav")]


def test_push_to_hub_then_load_by_name_through_a_local_endpoint(tiny_saved, tmp_path):
    model, folder = tiny_saved
    hub = FakeHub()
    try:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"),
               "HF_TOKEN": "hf_test", "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
        r = _python(f"from clapbook.model import CLAP; print(CLAP.from_pretrained({str(folder)!r}).push_to_hub('someone/tiny-clap'))", env)
        assert "someone/tiny-clap/commit/" in r.stdout
        saved = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        assert sorted(hub.repos["someone/tiny-clap"]["files"]) == saved
        assert json.loads(hub.repos["someone/tiny-clap"]["files"]["config.json"]) == json.loads((folder / "config.json").read_text())
        np.save(tmp_path / "wave.npy", _wave(model.sample_rate))
        _python("import numpy as np; from clapbook.pretrained import load_pretrained\n"
                f"m = load_pretrained('someone/tiny-clap'); np.save({str(tmp_path / 'emb.npy')!r}, m.embed_audio(np.load({str(tmp_path / 'wave.npy')!r})).numpy())", env)
        assert ("GET", f"/someone/tiny-clap/resolve/{hub.repos['someone/tiny-clap']['sha']}/text/tokenizer.json") in hub.log
        np.testing.assert_array_equal(np.load(tmp_path / "emb.npy"), model.embed_audio(np.load(tmp_path / "wave.npy")).numpy())
    finally:
        hub.server.shutdown()


# ---------------------------------------------------------------- published checkpoints: converted once
def test_a_published_checkpoint_is_converted_once_and_read_afterwards(hf_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("CLAPBOOK_CACHE", str(tmp_path / "cb"))
    wave = _wave(48000, 3.0)
    direct = P.load_pretrained(hf_folder, verbose=False)
    first = P.load_pretrained(hf_folder, cache=True, verbose=False)
    (conv,) = [p for p in (tmp_path / "cb" / "converted").iterdir() if p.is_dir()]
    assert json.loads(conv.with_name(conv.name + ".json").read_text())["source"] == str(hf_folder)
    assert torch.equal(first.embed_audio(wave, sample_rate=48000), direct.embed_audio(wave, sample_rate=48000))
    monkeypatch.setattr(P, "convert", lambda *a, **k: pytest.fail("converted a second time"))
    again = P.load_pretrained(hf_folder, cache=True)
    assert torch.equal(again.embed_audio(wave, sample_rate=48000), direct.embed_audio(wave, sample_rate=48000))
    assert P.converted_checkpoint(conv) == conv                          # a clapbook folder is used as it is


def test_the_command_line_converts_a_published_checkpoint_once(hf_folder, tmp_path):
    import soundfile as sf
    sf.write(tmp_path / "a.wav", _wave(48000, 2.0), 48000)
    env = {**os.environ, "CLAPBOOK_CACHE": str(tmp_path / "cb")}
    stamps = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-m", "clapbook.cli", "embed", "--checkpoint", str(hf_folder), "--out", str(tmp_path / "e.parquet"),
                            str(tmp_path / "a.wav")], capture_output=True, text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stderr
        (conv,) = [p for p in (tmp_path / "cb" / "converted").iterdir() if p.is_dir()]
        stamps.append((conv / "model.safetensors").stat().st_mtime_ns)
    assert stamps[0] == stamps[1]


# ---------------------------------------------------------------- fine-tuning a converted published model
def test_fine_tuning_a_converted_hugging_face_model_then_save_and_reload(hf_folder, tmp_path):
    "The converted config has its front end as a dict (not a preset name) and exact encoder sizes: train, save, reload."
    from clapbook.sounds import soundworld
    from clapbook.train import TrainConfig, train
    src = shutil.copytree(hf_folder, tmp_path / "hf-12k")              # a front end that is no preset: stored as a dict
    pp = json.loads((src / "preprocessor_config.json").read_text()); pp["frequency_max"] = 12000
    (src / "preprocessor_config.json").write_text(json.dumps(pp))
    model = CLAP.from_pretrained(P.convert(src, tmp_path / "converted", verbose=False))
    assert isinstance(model.config.frontend, dict) and model.frontend.f_max == 12000
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pairs = soundworld(n=24, seed=1)["train"]                          # 16 kHz, 2 s: resampled to 48 kHz, padded to 10 s
    state = train(model, pairs, TrainConfig(max_steps=2, batch_size=4, lr=1e-4, progress=False), out_dir=tmp_path / "run")
    assert state["step"] == 2 and any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    back = CLAP.from_pretrained(model.save_pretrained(tmp_path / "tuned"))
    wave = _wave(48000, 3.0)
    assert torch.equal(back.embed_audio(wave, sample_rate=48000), model.embed_audio(wave, sample_rate=48000))
    assert torch.equal(back.embed_text(["a dog barks"]), model.embed_text(["a dog barks"]))
    assert (tmp_path / "run" / "best" / "config.json").is_file()
    from clapbook.pretraining import AudioTaskModel                     # chapter 14's model takes the converted config too
    task = AudioTaskModel(model.config, head="class", num_classes=3)
    assert task.frontend == model.frontend
    assert {k: v.shape for k, v in task.audio_encoder.state_dict().items()} == {k: v.shape for k, v in model.audio_encoder.state_dict().items()}


# ---------------------------------------------------------------- clapbook.zero_shot
def test_import_clapbook_stays_light_and_zero_shot_is_there():
    r = _python("import sys, clapbook; assert 'torch' not in sys.modules; f = clapbook.zero_shot; assert 'torch' in sys.modules; "
                "from clapbook import zero_shot; print(zero_shot.__module__)", {})
    assert r.stdout.strip() == "clapbook.pretrained"


def test_zero_shot_takes_paths_arrays_and_dataset_rows_and_answers_like_the_pipeline(tiny_saved, tmp_path):
    import clapbook, soundfile as sf
    from clapbook.sounds import soundworld
    model, folder = tiny_saved
    labels = ["a bell", "rain", "a dog barking"]
    row = soundworld(n=48, seed=2)["test"][0]["audio"]                  # an undecoded datasets Audio value {"bytes", "path"}
    wave, sr = sf.read(__import__("io").BytesIO(row["bytes"]), dtype="float32")
    sf.write(tmp_path / "c.wav", wave, sr, subtype="FLOAT")
    one = clapbook.zero_shot(str(tmp_path / "c.wav"), labels, model=folder)
    assert [set(r) for r in one] == [{"score", "label"}] * 3 and sorted(r["label"] for r in one) == sorted(labels)
    assert [r["score"] for r in one] == sorted((r["score"] for r in one), reverse=True)
    assert abs(sum(r["score"] for r in one) - 1) < 1e-5
    many = clapbook.zero_shot([row, {"array": wave, "sampling_rate": sr}, wave], labels, model=model, sampling_rate=sr)
    assert len(many) == 3
    for r in many: np.testing.assert_allclose([x["score"] for x in r], [x["score"] for x in one], atol=1e-5)
    probs = model.similarity(model.embed_audio(wave), model.embed_text([f"This is a sound of {l}." for l in labels]), scaled=True).softmax(-1)[0]
    assert {r["label"]: round(r["score"], 5) for r in one} == {l: round(float(p), 5) for l, p in zip(labels, probs)}
    multi = clapbook.zero_shot(wave, labels, model=model, sampling_rate=sr, multi_label=True)
    assert all(0 < r["score"] < 1 for r in multi) and abs(sum(r["score"] for r in multi) - 1) > 1e-3   # independent sigmoids
    with pytest.raises(ValueError, match="needs \\{\\}"):
        clapbook.zero_shot(wave, labels, model=model, sampling_rate=sr, hypothesis_template="a sound")
