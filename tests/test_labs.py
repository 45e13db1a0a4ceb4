"""The classroom labs: every check passes its reference solution and every right answer of the catalogue,
names each catalogued wrong answer, and catches each new kind of mistake (a wrong type, a missing gradient,
an in-place change, a batch of one, logits near 100) with its message; the labs ship without solutions;
every lab runs top to bottom with the solutions filled in."""
import importlib.util, os, subprocess, sys, time
from pathlib import Path

import nbformat
import pytest
import torch

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


@pytest.mark.parametrize("i", range(len(_module("valid_answers").VALID)),
                         ids=[f.__name__ for _, f in _module("valid_answers").VALID])
def test_check_accepts_the_right_answer(i):
    check, right = _module("valid_answers").VALID[i]
    r = getattr(labs, check)(right)
    assert r.passed, f"{check}({right.__name__}) refused a right answer: {r.message}"
    assert r.figure is not None


def test_every_check_has_catalogued_wrong_and_right_answers():
    checks = {c for _, _, c in EXERCISES}
    assert checks <= {c for c, _, _ in _module("wrong_answers").WRONG}
    assert checks <= {c for c, _ in _module("valid_answers").VALID}


def _says(check, name):
    r = getattr(labs, check)(getattr(_module("wrong_answers"), name))
    assert not r.passed and r.figure is None
    return r.message


def test_a_wrong_type_is_named():
    assert _says("check_contrastive_loss", "loss_item") == labs._LOSS_NUMBER
    assert "your loss is a Python float" in labs._LOSS_NUMBER and ".backward()" in labs._LOSS_NUMBER
    assert _says("check_last_token_positions", "last_list").startswith("your indices are a Python list")
    assert _says("check_last_token_positions", "last_float").startswith("your indices are a float32 tensor")
    assert "half precision" in _says("check_similarity", "sim_half")
    assert "keep the input's dtype" in _says("check_insert_before_eot", "insert_double")


@pytest.mark.parametrize("check,name", [("check_similarity", "sim_numpy"), ("check_caption_probabilities", "probs_numpy"),
                                        ("check_soft_targets", "soft_numpy"), ("check_log_mel", "log_mel_numpy"),
                                        ("check_compose_audio", "compose_numpy"), ("check_eot_pool", "pool_numpy")])
def test_numpy_gets_a_message_not_a_crash(check, name):
    assert _says(check, name).startswith("your function returned NumPy")


def test_a_missing_gradient_is_named():
    assert _says("check_contrastive_loss", "loss_math_exp").startswith("no gradient reaches log_scale")
    assert _says("check_similarity", "sim_item_scale").startswith("no gradient reaches log_scale")
    assert _says("check_contrastive_loss", "loss_no_grad").startswith("no gradient reaches audio_emb or text_emb or log_scale")
    assert _says("check_temporal_loss", "tl_detached_negative").startswith("no gradient reaches neg_text_emb")
    assert _says("check_insert_before_eot", "insert_detached_token").startswith("no gradient reaches token")
    # right values, a piece detached: the gradient itself is compared
    half_detached = lambda h, m: 0.5 * (h + h.detach())[torch.arange(len(h)), m.sum(1) - 1]
    assert "the gradient that reaches hidden is not" in labs.check_eot_pool(half_detached).message
    # a wrong formula that ignores an input is named by its values, not by the gradient
    assert _says("check_similarity", "sim_no_scale").startswith("you forgot the temperature")


@pytest.mark.parametrize("check,name,arg", [("check_compose_audio", "compose_in_place", "x"), ("check_power_to_db", "db_in_place", "power"),
                                            ("check_caption_probabilities", "probs_in_place", "logits"), ("check_similarity", "sim_in_place", "a"),
                                            ("check_last_token_positions", "last_in_place", "mask"), ("check_hz_to_mel", "hz_to_mel_in_place", "f")])
def test_an_in_place_change_is_named(check, name, arg):
    assert _says(check, name).startswith(f"your function changed its input in place: after the call, `{arg}` holds different values")


def test_a_batch_of_one_is_tried():
    for check, name in [("check_eot_pool", "pool_gather_squeeze"), ("check_contrastive_loss", "loss_squeeze"),
                        ("check_last_token_positions", "last_squeeze"), ("check_temporal_loss", "tl_squeeze")]:
        message = _says(check, name)
        assert "a batch of one" in message and ".squeeze() removes every dimension of size 1" in message, message


def test_logits_near_100_are_tried():
    for check, name in [("check_caption_probabilities", "probs_manual_exp"), ("check_contrastive_loss", "loss_manual_exp"),
                        ("check_soft_cross_entropy", "sce_log_of_softmax"), ("check_temporal_loss", "tl_manual_exp")]:
        message = _says(check, name)
        assert message.startswith("right on the other cases, but wrong") and "logits near 100" in message, message
        assert "subtract each row's max" in message


def test_mistakes_are_named_case_by_case():
    message = _says("check_events_in_time_order", "order_before_only")       # wrong on 'after' and on 'before' only
    assert "you swapped the order of 'after'" in message and "'before' keeps the sentence order" in message
    assert "every caption came back reversed" not in message
    assert _says("check_negative_caption", "neg_after_unchanged").startswith("you returned the caption unchanged")
    assert _says("check_contrastive_loss", "loss_rows_only_partly").startswith("only the audio-to-text half")


def test_afternoon_is_not_after():
    assert labs._split_caption("birds sing in the afternoon followed by a bell rings") == ("birds sing in the afternoon", "followed by", "a bell rings")
    assert "'afternoon' is not 'after'" in _says("check_events_in_time_order", "order_substring")


def test_a_message_nothing_explains_shows_the_failing_input():
    r = labs.check_eot_pool(lambda h, m: h[:, 1])
    assert r.message.startswith("wrong value on test case 1 of 4 (input: h=float32 tensor of shape (3, 6, 4) starting [")
    assert "m=int64 tensor [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]]" in r.message
    assert "they first differ at index" in r.message


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
    for lab in LAB_PATHS:                         # a right answer prints no warning (lab 2's training cell once did)
        for c in nbformat.read(str(tmp_path / lab.name), as_version=4).cells:
            for o in c.get("outputs", []):
                assert "Warning" not in str(o.get("text", "")), f"{lab.name}: {o['text'][:300]}"
