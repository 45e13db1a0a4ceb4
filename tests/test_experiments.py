"""Tests for the experiments layer: the shared results module (edge cases beyond nbs/experiments/00_results.ipynb)
and every experiment run end to end at the `test` size, checked against the results contract."""
import ast
import importlib
import inspect
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clapbook.experiments import NAMES
from clapbook.experiments.results import (SIZES, claim, git_state, header, header_markdown, load_results, mean_std,
                                          merge_parts, paired_claim, pick_size, write_results)
from clapbook.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("experiment", "module", "git_commit", "git_dirty", "command", "machine", "date", "size", "seeds",
             "wall_seconds", "complete", "claims")
CLAIM_KEYS = {"id", "text", "metric", "method", "control", "seeds", "method_per_seed", "control_per_seed", "min_margin",
              "holds"}


# ---------------------------------------------------------------- the results module

def test_mean_std_is_one_tuple_of_floats():
    m, s = mean_std(np.array([1, 2, 3], dtype=np.int64))
    assert (type(m), type(s)) == (float, float) and (m, s) == (2.0, 1.0)
    assert mean_std(x for x in [4.0]) == (4.0, 0.0)                          # a generator, one value: std 0, not NaN
    assert mean_std([0.1, 0.1, 0.1])[1] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="no values"): mean_std([])


def test_claim_holds_only_when_every_seed_clears_the_margin():
    c = lambda m, k, margin: claim("c", "t", "m", "A", "B", range(len(m)), m, k, margin)["holds"]
    assert c([10.0, 12.0], [5.0, 6.0], 4.9) is True
    assert c([10.0, 12.0], [5.0, 6.0], 5.0) is False                         # seed 0's margin is exactly 5: not more
    assert c([90.0, 99.0], [10.0, 98.5], 0.0) is True and c([90.0, 98.0], [10.0, 98.5], 0.0) is False   # one seed decides
    assert c([70.0], [70.5], -1.0) is True and c([70.0], [71.5], -1.0) is False   # "at least the control minus 1"
    full = claim("x", "t", "m", "A", "B", (2, 0), np.array([1, 2]), [0, 0])
    assert set(full) == CLAIM_KEYS and full["seeds"] == [2, 0] and json.loads(json.dumps(full)) == full
    with pytest.raises(ValueError, match="per seed"): claim("x", "t", "m", "A", "B", [], [], [])


def test_paired_claim_keeps_common_seeds_in_order():
    c = paired_claim("x", "t", "m", "A", "B", {3: 9.0, 1: 8.0, 2: 7.0}, {1: 1.0, 3: 2.0, 5: 0.0}, min_margin=6.5)
    assert (c["seeds"], c["method_per_seed"], c["control_per_seed"], c["holds"]) == ([1, 3], [8.0, 9.0], [1.0, 2.0], True)
    assert paired_claim("x", "t", "m", "A", "B", {}, {0: 1.0}) is None


def test_pick_size_names_only_the_shared_vocabulary():
    assert SIZES == ("test", "tiny", "full")
    sizes = {"test": {"n": 1}, "tiny": {"n": 2}, "full": {"n": 3}, "base": {"n": 4}}
    with pytest.raises(ValueError, match=r"size='base'; choose from \['test', 'tiny', 'full'\]"): pick_size(sizes, "base")
    with pytest.raises(ValueError, match="choose from"): pick_size({"test": {}}, "tiny")


def _git_repo(tmp_path):
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "pkg").mkdir(); (tmp_path / "pkg" / "m.py").write_text("x = 1\n")
    (tmp_path / "experiments" / "results").mkdir(parents=True); (tmp_path / "experiments" / "results" / "r.md").write_text("a")
    git("add", "."); git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    return git


def test_git_state_only_at_the_top_of_a_checkout(tmp_path):
    _git_repo(tmp_path)
    commit, dirty = git_state(tmp_path)
    assert len(commit) == 40 and dirty is False
    assert git_state(tmp_path / "pkg") == (None, None)                     # e.g. a wheel installed in a venv inside a repo
    (tmp_path / "experiments" / "results" / "r.md").write_text("rewritten by a run")
    assert git_state(tmp_path) == (commit, False)
    (tmp_path / "pkg" / "m.py").unlink()                                     # a deleted tracked file is a change
    assert git_state(tmp_path) == (commit, True)


def test_git_state_without_git(tmp_path, monkeypatch):
    _git_repo(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert git_state(tmp_path) == (None, None)
    head = header("demo", "clapbook.experiments.demo", "Demo", "test", [0], root=tmp_path)
    assert (head["git_commit"], head["git_dirty"]) == (None, None)
    assert "git commit not recorded" in header_markdown(head)


def test_this_checkout_has_a_git_state():
    commit, dirty = git_state(ROOT)
    if (ROOT / ".git").exists(): assert len(commit) == 40 and isinstance(dirty, bool)
    assert git_state() == git_state(ROOT)                                    # the default is the checkout clapbook runs from


def test_write_results_partial_then_complete(tmp_path):
    head = header("demo", "clapbook.experiments.demo", "Demo", "test", (0, 1), settings={"k": 1}, runs_planned=2)
    c = claim("d", "D beats E.", "acc (%)", "D", "E", [0], [60.0], [50.0])
    r = write_results(tmp_path, head, [{"seed": 0}], {"table": {"x": 1}}, [c, None], "| t |", 3.21)
    md = (tmp_path / "demo.md").read_text()
    assert r["complete"] is False and r["runs_done"] == 1 and "**Partial: 1 of 2 runs finished.**" in md and "**d** (holds)" in md
    assert load_results(tmp_path / "demo.json") == r and all(k in r for k in TOP_LEVEL) and r["claims"] == [c]
    r = write_results(tmp_path, head, [{"seed": 0}, {"seed": 1}], {}, [], "| t |")
    assert r["complete"] is True and "Partial" not in (tmp_path / "demo.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json", "demo.md"]


def test_atomic_write_keeps_the_old_file_when_the_swap_fails(tmp_path, monkeypatch):
    import clapbook.files as files
    atomic_write(tmp_path / "r.json", "old")
    def boom(*a): raise OSError("disk full")
    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"): atomic_write(tmp_path / "r.json", "new")
    assert (tmp_path / "r.json").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def _part(seed, **kw):
    base = {"experiment": "demo", "module": "m", "size": "test", "git_commit": "a" * 40, "git_dirty": False,
            "command": f"run seed {seed}", "machine": {"cpus": 2}, "date": f"2000-01-0{seed + 1} 00:00 UTC", "seeds": [seed],
            "settings": {"lr": 1, "arms": ["A"]}, "runs_planned": 1, "wall_seconds": 10.0 * (seed + 1),
            "runs": [{"arm": "A", "seed": seed}], "claims": []}
    return {**base, **kw}


def test_merge_parts_combines_and_refuses():
    head, runs = merge_parts([_part(1, git_dirty=None, machine={"cpus": 8}), _part(0)], key=("arm", "seed"))
    assert [r["seed"] for r in runs] == [0, 1] and head["seeds"] == [0, 1] and head["runs_planned"] == 2
    assert head["wall_seconds"] == 20.0 and head["date"].startswith("2000-01-01") and head["git_dirty"] is None
    assert head["machine"] == {"parts": [{"cpus": 8}, {"cpus": 2}]} and "claims" not in head and "runs" not in head
    assert merge_parts([_part(0), _part(1, git_dirty=True)])[0]["git_dirty"] is True
    seeds10 = merge_parts([_part(10), _part(2)])[1]
    assert [r["seed"] for r in seeds10] == [2, 10]                           # numeric order, not string order
    with pytest.raises(ValueError, match="at least two"): merge_parts([_part(0)])
    with pytest.raises(ValueError, match="differ in size"): merge_parts([_part(0), _part(1, size="tiny")])
    with pytest.raises(ValueError, match="differ in experiment"): merge_parts([_part(0), _part(1, experiment="other")])
    with pytest.raises(ValueError, match=r"other settings \(\['lr'\]\)"): merge_parts([_part(0), _part(1, settings={"lr": 2, "arms": ["A"]})])
    with pytest.raises(ValueError, match="more than one part"): merge_parts([_part(0), _part(0)], key=("arm", "seed"))
    b = _part(0, settings={"lr": 1, "arms": ["B"]}, runs=[{"arm": "B", "seed": 0}])
    assert merge_parts([_part(0), b], key=("arm", "seed"), union=("arms",))[0]["settings"]["arms"] == ["A", "B"]


# ---------------------------------------------------------------- the experiments

def _file(module: str):
    "The file of a dotted clapbook module name (a .py or a package's __init__.py), relative to the repo, or None."
    base = ROOT.joinpath(*module.split("."))
    p = next((q for q in (base.with_suffix(".py"), base / "__init__.py") if q.exists()), None)
    return None if p is None else str(p.relative_to(ROOT))

def _imports(module: str) -> set:
    "The clapbook names `module` imports (each `from X import a` counts X and X.a), as the staleness rule reads them."
    path = _file(module)
    pkg = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.ImportFrom):
            target = (".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
                      if node.level else node.module or "")
            out |= {c for c in [target] + [f"{target}.{a.name}" for a in node.names] if c.startswith("clapbook")}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("clapbook")}
    return {m for m in out if _file(m) is not None}

def _closure(module: str) -> set:
    "Files of `module` and of every clapbook module it imports, transitively."
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m not in seen: seen.add(m); todo += sorted(_imports(m))
    return {_file(m) for m in seen}


@pytest.mark.parametrize("name", NAMES)
def test_experiment_module_shape(name):
    mod = importlib.import_module(f"clapbook.experiments.{name}")
    params = inspect.signature(mod.run).parameters
    want = {"size": "tiny", "seeds": (0, 1, 2), "out_dir": "experiments/results", "device": "cpu", "command": None,
            "progress": False}
    assert {k: params[k].default for k in want} == want
    if "steps" in params: assert params["steps"].default is None     # one step count to override (temporal has one per arm)
    assert list(params)[:6] == ["size", "seeds", "out_dir", "device", "command", "progress"]
    assert callable(mod.merge)
    # results go stale when a module in this closure changes: no CLI, no other experiment, and the experiment's own
    # files do not import the package (its __init__ holds the docstrings nbdev rewrites)
    own = {_file(m) for m in _imports(f"clapbook.experiments.{name}") | _imports("clapbook.experiments.results")}
    assert "clapbook/__init__.py" not in own and "clapbook/experiments/__init__.py" not in own
    files = _closure(f"clapbook.experiments.{name}")
    assert not {f for f in files if f.startswith(("clapbook/cli", "clapbook/widgets", "clapbook/labs"))}
    assert {f for f in files if f.startswith("clapbook/experiments/")} == {"clapbook/experiments/results.py",
                                                                           f"clapbook/experiments/{name}.py"}


def check_contract(res: dict, name: str, ids):
    "The results contract, as ../shared/tools/check-results reads it (without the git ancestry and freshness checks)."
    assert res["experiment"] == name and res["module"] == f"clapbook.experiments.{name}"
    for k in TOP_LEVEL: assert k in res, k
    assert res["git_commit"] is None or len(res["git_commit"]) == 40
    assert res["git_dirty"] in (True, False, None) and res["size"] == "test" and res["complete"] is True
    assert [c["id"] for c in res["claims"]] == list(ids)
    for c in res["claims"]:
        assert set(c) == CLAIM_KEYS
        assert len(c["seeds"]) == len(c["method_per_seed"]) == len(c["control_per_seed"]) >= 1
        assert c["holds"] == all(a - b > c["min_margin"] for a, b in zip(c["method_per_seed"], c["control_per_seed"]))


def run_and_check(mod, name, tmp_path, ids, **kw):
    res = mod.run(size="test", seeds=(0,), out_dir=tmp_path, **kw)
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    assert saved == json.loads(json.dumps(res))
    check_contract(saved, name, ids)
    md = (tmp_path / f"{name}.md").read_text()
    assert md.startswith("# ") and "Command: `clapbook.experiments." in md and "## Claims" in md
    # the same run as seed 1, made elsewhere, merges into one file whose claims pair both seeds
    other = {**saved, "seeds": [1], "runs": [{**r, "seed": 1} for r in saved["runs"]]}
    (tmp_path / "other").mkdir(); (tmp_path / "other" / f"{name}.json").write_text(json.dumps(other))
    merged = mod.merge([tmp_path, tmp_path / "other"], tmp_path / "merged")
    check_contract(merged, name, ids)
    assert merged["seeds"] == [0, 1] and all(c["seeds"] == [0, 1] for c in merged["claims"])
    return saved, md


def test_temporal_end_to_end(tmp_path):
    import clapbook.experiments.temporal as ex
    res, md = run_and_check(ex, "temporal", tmp_path, ["cnn14_t2a", "cnn14_a2t", "htsat_t2a", "htsat_a2t"])
    assert list(res["summary"]) == list(ex.ARMS) and list(res["summary"]["cnn14"]) == list(ex.STAGES)
    assert list(res["groups"]["htsat"][ex.STAGES[2]]) == list(ex.GROUPS)
    c = res["claims"][0]
    run = next(r for r in res["runs"] if r["arm"] == "cnn14")
    assert (c["method_per_seed"], c["control_per_seed"]) == ([run["results"][ex.STAGES[2]]["t_classify_t2a"]],
                                                             [run["results"][ex.STAGES[1]]["t_classify_t2a"]])
    h = next(c for c in res["claims"] if c["id"] == "htsat_t2a")
    nofold = next(r for r in res["runs"] if r["arm"] == "htsat-nofold")
    assert h["control_per_seed"] == [nofold["results"][ex.STAGES[1]]["t_classify_t2a"]]     # its own control
    with pytest.raises(ValueError, match="unknown arms"): ex.run(size="test", out_dir=tmp_path, arms=("nope",))


def test_curation_end_to_end(tmp_path):
    import clapbook.experiments.curation as ex
    res, md = run_and_check(ex, "curation", tmp_path, list(ex.CLAIMS))
    assert res["arms"] == ["teacher", *ex.ARMS] and res["seeds_done"] == [0]
    c = next(c for c in res["claims"] if c["id"] == "ads_sl_vs_control")
    assert (c["method_per_seed"], c["control_per_seed"]) == ([res["runs"][0]["arms"]["ADS+SL"]["test"]["acc"]],
                                                             [res["runs"][0]["arms"]["control"]["test"]["acc"]])
    assert set(res["runs"][0]["curves"]) == set(ex.CURVE_ARMS) and "| ADS+SL |" in md


def test_composed_end_to_end(tmp_path):
    import clapbook.experiments.composed as ex
    res, md = run_and_check(ex, "composed", tmp_path, list(ex.CLAIMS))
    assert [r["method"] for r in res["runs"]] == ["pretrained", *ex.ARMS]
    assert [r["steps"] for r in res["runs"]][:2] == [0, ex.COMPOSED_SIZES["test"]["steps"]]
    assert "| composed |" in md and "Diagnostic" in md
    assert [(c["method"], c["control"]) for c in res["claims"]] == [("composed", "finetune"), ("composed", "finetune"), ("composed", "mixup")]


def test_composed_arms_and_refusals(tmp_path):
    import clapbook.experiments.composed as ex
    r = ex.run(size="test", seeds=(0,), out_dir=tmp_path, arms=("finetune", "composed"))
    assert [x["method"] for x in r["runs"]] == ["pretrained", "finetune", "composed"]
    assert [c["id"] for c in r["claims"]] == ["composed_vs_finetune_t2a_r1", "composed_vs_finetune_a2t_r1"]
    with pytest.raises(ValueError, match="unknown arms"): ex.run(size="test", out_dir=tmp_path, arms=["nope"])
    with pytest.raises(ValueError, match="unknown settings"): ex.run(size="test", out_dir=tmp_path, n_labelled=3)


def test_encoders_end_to_end(tmp_path):
    import clapbook.experiments.encoders as ex
    res, md = run_and_check(ex, "encoders", tmp_path, ["gpt2_vs_bert_cnn14"])
    assert [r["combo"] for r in res["runs"]] == list(ex.ENCODER_SIZES["test"]["combos"])
    for r in res["runs"]: assert r["score"] == pytest.approx(np.mean(list(r["metrics"].values())))
    assert "| cnn14+gpt2 |" in md and set(res["per_task"]["cnn14+bert"]) == set(res["runs"][0]["metrics"])
    assert list(res["curve"]) == list(ex.CURVE_PAIRS) and [r["step"] for r in res["curve"]["htsat+minilm"]] == [2, 4]
    assert "Step curve" in md
    with pytest.raises(ValueError, match="unknown encoder pairs"): ex.run(size="test", out_dir=tmp_path, combos=["cnn14+clip"])


def test_pretraining_end_to_end(tmp_path):
    import clapbook.experiments.pretraining as ex
    res, md = run_and_check(ex, "pretraining", tmp_path, list(ex.CLAIMS))
    assert [r["pretraining"] for r in res["runs"]] == list(ex.PRETRAININGS)
    assert res["runs"][0]["pretrain_loss"] is None and all(r["pretrain_loss"] > 0 for r in res["runs"][1:])
    assert res["runs"][0]["clap_steps"] == 2 * res["runs"][1]["clap_steps"]          # the control: the same total steps
    assert all(set(r["probes_clap"]) == set(ex.PROBES) for r in res["runs"]) and res["runs"][1]["audio_usage"] is None
    assert "| scratch (matched steps) | 0 |" in md and "| multi-task (frozen text decoder) | 0 |" in md and "Partial" not in md
    with pytest.raises(ValueError, match="unknown pretrainings"): ex.run(size="test", out_dir=tmp_path, pretrainings=("nope",))
