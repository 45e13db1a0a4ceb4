"""clapbook.files under real failures: a write the kernel refuses, a writer that goes around Python's io, kills at
every point of a folder swap, a folder swapped in two renames where the one-step exchange is missing, locks."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import clapbook.files as F
from clapbook.files import FAULT_ENV, atomic_folder, atomic_write, clean_stale, folder_lock, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
resource = pytest.importorskip("resource")


def child(code: str, fault: str | None = None, fsize: int | None = None) -> subprocess.CompletedProcess:
    "Run `code` in a fresh Python with clapbook.files imported, optionally with a fault point and a file-size limit."
    env = {**{k: v for k, v in os.environ.items() if k != FAULT_ENV}, **({FAULT_ENV: fault} if fault else {})}
    limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))) if fsize else None
    head = f"import sys, json; sys.path.insert(0, {ROOT!r})\nfrom pathlib import Path\nimport numpy as np\nfrom clapbook.files import *\n"
    return subprocess.run([sys.executable, "-c", head + code], capture_output=True, text=True, env=env, preexec_fn=limit)


def test_a_refused_write_names_the_file_and_leaves_the_old_one(tmp_path):
    p = atomic_write(tmp_path / "big.bin", b"old")
    r = child(f"atomic_write({str(p)!r}, b'x' * 10000)", fsize=4096)         # the kernel stops the file at 4 KiB
    assert r.returncode == 1 and f"File too large: '{p}'" in r.stderr, r.stderr
    assert p.read_bytes() == b"old" and sorted(x.name for x in tmp_path.iterdir()) == ["big.bin"]


def test_a_short_write_around_pythons_io_is_refused(tmp_path):
    "np.save on a file object writes through C stdio and loses the failed part silently: atomic_write notices."
    p = tmp_path / "e.npy"
    np.save(p, np.ones(3, np.float32))
    r = child(f"with atomic_write({str(p)!r}) as f: np.save(f, np.zeros(1000, np.float32))", fsize=2048)   # fits in stdio's buffer
    assert r.returncode == 1 and "bytes reached the disk" in r.stderr and str(p) in r.stderr, r.stderr
    np.testing.assert_array_equal(np.load(p), np.ones(3, np.float32))       # the old file, not a short new one


@pytest.mark.parametrize("point,version", [("fill:m:2", "v1"), ("swap:m:1", "v2")])
def test_a_kill_in_a_folder_swap_leaves_a_whole_folder(tmp_path, point, version):
    save = f"""
def save(version):
    with atomic_folder({str(tmp_path / 'm')!r}) as tmp:
        (tmp / "w.bin").write_bytes(version.encode() * 1000)
        (tmp / "config.json").write_text(json.dumps({{"version": version}}))
save("v1"); save("v2")
"""
    r = child(save, fault=point)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert json.loads((tmp_path / "m" / "config.json").read_text())["version"] == version
    assert (tmp_path / "m" / "w.bin").read_bytes() == version.encode() * 1000
    with atomic_folder(tmp_path / "m") as tmp: (tmp / "config.json").write_text('{"version": "v3"}')   # the next writer
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m"]                 # tidied what the kill left


def test_two_step_swap_killed_between_its_renames_is_put_back(tmp_path, monkeypatch):
    "Where folders cannot be exchanged in one step, a kill between the two renames leaves the old folder aside; it comes back."
    with atomic_folder(tmp_path / "m") as tmp: (tmp / "config.json").write_text('{"version": "v1"}')
    r = child(f"""
import clapbook.files as F
F._exchange = lambda a, b: False                      # a system without renameat2
with atomic_folder({str(tmp_path / 'm')!r}) as tmp: (tmp / "config.json").write_text('{{"version": "v2"}}')
""", fault="swap:m:1")
    assert r.returncode == -signal.SIGKILL and not (tmp_path / "m").exists()   # between the renames: no folder
    assert any(x.name.endswith(".old") for x in tmp_path.iterdir())
    assert clean_stale(tmp_path) == 2                                          # the old folder back, the new one removed
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == {"version": "v1"}
    monkeypatch.setattr(F, "_exchange", lambda a, b: False)
    with atomic_folder(tmp_path / "m") as tmp: (tmp / "config.json").write_text('{"version": "v3"}')   # two renames, whole
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == {"version": "v3"}
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m"]


def test_folder_lock_tidies_a_killed_runs_temporaries(tmp_path):
    out = tmp_path / "run"
    r = child(f"""
with folder_lock({str(out)!r}):
    write_json({str(out / 'ck' / 'a.json')!r}, {{"step": 1}})
    write_json({str(out / 'ck' / 'a.json')!r}, {{"step": 2}})
""", fault="write:a.json:2")
    assert r.returncode == -signal.SIGKILL
    assert len(list((out / "ck").iterdir())) == 2                              # a.json and the torn temporary
    with folder_lock(out):                                                     # the kill released the lock ...
        assert sorted(x.name for x in (out / "ck").iterdir()) == ["a.json"]    # ... and the next holder tidies
    assert json.loads((out / "ck" / "a.json").read_text()) == {"step": 1}


def test_atomic_folder_refuses_a_file_in_its_place(tmp_path):
    (tmp_path / "m").write_text("a file")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        with atomic_folder(tmp_path / "m") as tmp: (tmp / "x").write_text("y")
    assert (tmp_path / "m").read_text() == "a file" and sorted(x.name for x in tmp_path.iterdir()) == ["m"]


def test_fault_point_without_the_variable_is_nothing(monkeypatch):
    monkeypatch.delenv(FAULT_ENV, raising=False)
    for _ in range(3): F.fault_point("write:x")                                # no kill, no state
    monkeypatch.setenv(FAULT_ENV, "write:y:1")
    F.fault_point("write:x")                                                   # another point: still nothing
