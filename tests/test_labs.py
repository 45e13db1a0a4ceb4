"""The classroom labs: every check passes its reference solution and names each catalogued wrong
answer; the labs ship without solutions; every lab runs top to bottom with the solutions filled in."""
import importlib.util, os, subprocess, sys, time
from pathlib import Path

import nbformat
import pytest

from clapbook import labs

ROOT = Path(__file__).resolve().parents[1]
LAB_DIR = ROOT / "labs"
INSTRUCTOR = LAB_DIR / "instructor"
LAB_PATHS = sorted(LAB_DIR.glob("[0-9]*.ipynb"))


def _module(name):
    if str(INSTRUCTOR) not in sys.path: sys.path.insert(0, str(INSTRUCTOR))
    return importlib.import_module(name)


def _exercises():
    "(lab, exercise name, check name) for every exercise cell: the code cell after an exercise calls its check."
    out = []
    for lab in LAB_PATHS:
        cells = [c for c in nbformat.read(str(lab), as_version=4).cells if c.cell_type == "code"]
        for c, nxt in zip(cells, cells[1:]):
            if c.source.startswith(labs.EXERCISE_MARK):
                name = c.source.splitlines()[0][len(labs.EXERCISE_MARK):].split()[0]
                check = nxt.source.split("(")[0].strip()
                out.append((lab.name, name, check))
    return out


EXERCISES = _exercises()


def test_there_are_labs_for_the_whole_pipeline():
    assert len(LAB_PATHS) >= 6, [p.name for p in LAB_PATHS]
    checks = {c for _, _, c in EXERCISES}
    for topic in ("check_log_mel", "check_contrastive_loss", "check_eot_pool", "check_zero_shot_probabilities",
                  "check_soft_targets", "check_t_classify", "check_insert_before_eot"):
        assert topic in checks, topic


@pytest.mark.parametrize("lab,name,check", EXERCISES, ids=[f"{n}" for _, n, _ in EXERCISES])
def test_check_passes_the_reference_solution(lab, name, check):
    r = getattr(labs, check)(getattr(_module("solutions"), name))
    assert r.passed, r
    assert r.message.startswith("correct") and r.figure is not None


@pytest.mark.parametrize("i", range(len(_module("wrong_answers").WRONG)),
                         ids=[f.__name__ for _, f, _ in _module("wrong_answers").WRONG])
def test_check_names_the_wrong_answer(i):
    check, wrong, phrase = _module("wrong_answers").WRONG[i]
    r = getattr(labs, check)(wrong)
    assert not r.passed and r.figure is None
    assert phrase in r.message, f"{check}({wrong.__name__}) said: {r.message}"


def test_every_check_has_catalogued_wrong_answers():
    covered = {c for c, _, _ in _module("wrong_answers").WRONG}
    assert {c for _, _, c in EXERCISES} <= covered


def test_strict_mode_raises_with_the_message(monkeypatch):
    monkeypatch.setenv("CLAPBOOK_LABS_STRICT", "1")
    with pytest.raises(labs.LabCheckFailed, match="wrong axis for the softmax"):
        labs.check_caption_probabilities(_module("wrong_answers").probs_dim0)


@pytest.mark.parametrize("lab", LAB_PATHS, ids=lambda p: p.stem)
def test_lab_ships_without_solutions(lab):
    nb = nbformat.read(str(lab), as_version=4)
    sols = (INSTRUCTOR / "solutions.py").read_text()
    for c in nb.cells:
        assert "#| export" not in c.source and "default_exp" not in c.source, "labs must stay out of nbdev-export"
        if c.cell_type == "code":
            assert not c.get("outputs"), f"{lab.name}: lab notebooks ship without outputs"
        if c.source.startswith(labs.EXERCISE_MARK):
            assert c.source.rstrip().endswith("raise NotImplementedError"), c.source
            name = c.source.splitlines()[0].split()[2]
            assert f"def {name}(" in sols, f"no solution for {name}"
    # the unfilled exercise is reported as not done, in words
    r = getattr(labs, [c for l, _, c in EXERCISES if l == lab.name][0])(lambda *a: (_ for _ in ()).throw(NotImplementedError))
    assert not r.passed and "not done yet" in r.message


def test_every_lab_runs_with_the_solutions(tmp_path):
    """Fill in the solutions and run every lab (IN_TEST, one thread, one interpreter for all: the imports are paid once); failing checks raise."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from run_labs import run_labs; from pathlib import Path; "
            "print(run_labs([Path(p) for p in sys.argv[3:]], Path(sys.argv[2]), test=True, one_process=True))")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code, str(INSTRUCTOR), str(tmp_path), *map(str, LAB_PATHS)], env=env,
                       capture_output=True, text=True, timeout=1200)
    print(r.stdout.strip())
    assert r.returncode == 0, r.stderr[-8000:]
    for lab in LAB_PATHS: assert lab.stem in r.stdout
