"""Chapter 17: 2 gloo ranks on 127.0.0.1 against one process: losses, gradients, training, resume, curation, CLI."""
import pytest
import torch

from clapbook.cli import main
from clapbook.distributed import (equivalence_check, equivalence_reference, max_weight_diff, proof_model, run_ranks, short_run,
                                  torchrun_command, gather_demo, curation_check)
from clapbook.train import ResumableSampler


def test_sampler_shares_are_disjoint_and_resume_by_item():
    one = ResumableSampler(20, seed=3); one.set_epoch(1, start=6)
    shares = [ResumableSampler(20, seed=3, rank=r, world_size=2) for r in range(2)]
    for s in shares: s.set_epoch(1, start=6)
    a, b = list(shares[0]), list(shares[1])
    assert not set(a) & set(b) and sorted(a + b) == sorted(list(one)) and len(a) == len(b) == 7
    assert a == list(one)[0::2] and b == list(one)[1::2]        # batch k of 2 ranks x b == batch k of 1 process x 2b


def test_torchrun_command_and_cli(capsys):
    assert torchrun_command(["-m", "clapbook.cli", "train"]).startswith("torchrun --standalone --nproc-per-node=")
    multi = torchrun_command(["x.py"], nnodes=4, nproc_per_node=8)
    assert "--nnodes=4" in multi and "--nproc-per-node=8" in multi and "--rdzv-backend=c10d" in multi
    main(["train", "--distributed", "--data", "some/folder", "--out", "runs/x", "--batch-size", "8"])
    out = capsys.readouterr().out
    line = [l for l in out.splitlines() if l.startswith("torchrun")][0]
    assert "-m clapbook.cli train --data some/folder --out runs/x --batch-size 8" in line and "--distributed" not in line


@pytest.fixture(scope="module")
def ranks():
    "One spawn of 2 gloo ranks for every check (each start imports torch and loads the model), against one process here."
    references = equivalence_reference(torch.float32), equivalence_reference(torch.float64)   # before any process group
    return run_ranks(_all_checks, 2, args=references, timeout_s=1500)


def _all_checks(ref32, ref64):
    return {"gather": gather_demo(), "curation": curation_check(), "losses": equivalence_check(ref32, (False, True)),
            "losses_float64": equivalence_check(ref64, (False,))}


def test_plain_all_gather_has_no_gradient_and_gather_rows_does(ranks):
    for r in ranks:
        assert r["gather"]["plain_requires_grad"] is False
        assert r["gather"]["with_grad"] == [[4.0] * 3] * 2        # the sum over both ranks of d(2 sum x)/dx


def test_every_loss_matches_one_process(ranks):
    names = {"clap", "soft-label", "temporal", "composed"}
    assert {k.replace(" (local loss)", "") for k in ranks[0]["losses"]} == names
    assert ranks[0]["losses"]["temporal"]["triplets_here"] == 4 and ranks[1]["losses"]["temporal"]["triplets_here"] == 0
    for r in ranks:
        for k, v in r["losses"].items():
            assert v["loss_diff"] < 1e-5, (k, v)
            assert not v["mismatched_tensors"], (k, v)
            # float32: rounding decides which time frame of a near-tie gets CNN14's max-over-time gradient (chapter 17,
            # section 5), up to ~2% of the largest gradient on some CPUs; a lost or doubled gradient would be ~100%
            assert v["grad_diff"] < 5e-2 * v["grad_max"], (k, v)


def test_every_loss_matches_one_process_exactly_in_float64(ranks):
    "The same code in float64: what is left of the float32 gaps above is rounding, not a different computation."
    assert set(ranks[0]["losses_float64"]) == {"clap", "soft-label", "temporal", "composed"}
    for r in ranks:
        for k, v in r["losses_float64"].items():
            assert v["loss_diff"] < 1e-12 and not v["mismatched_tensors"], (k, v)
            assert v["grad_diff"] < 1e-12 * v["grad_max"], (k, v)


def test_sharded_curation_matches_one_process(ranks):
    for r in ranks:
        c = r["curation"]
        assert c["is_memmap"] and c["shape"] == [50, 16] and c["emb_diff"] < 1e-5
        assert c["index_equal"] and c["pairs_equal"] and c["score_diff"] < 1e-6 and c["n_pairs"] > 0


def _train_on_ranks(out, one_stopped):
    full = short_run(out / "ranks-full", batch_size=8)
    short_run(out / "ranks-stopped", batch_size=8, stop_at_step=3)
    resumed = short_run(one_stopped, batch_size=8, resume=True)
    return {"full": full["weights"], "one_then_two": resumed["weights"], "step": resumed["step"], "world": full["world_size"]}


def test_training_and_resume_across_rank_counts(tmp_path):
    one = short_run(tmp_path / "one", batch_size=16)                          # 1 process x 16 pairs, 6 steps
    short_run(tmp_path / "one-stopped", batch_size=16, stop_at_step=3)
    r = run_ranks(_train_on_ranks, 2, args=(tmp_path, tmp_path / "one-stopped"), timeout_s=1500)[0]
    two_then_one = short_run(tmp_path / "ranks-stopped", batch_size=16, resume=True)
    assert r["world"] == 2 and r["step"] == 6 and two_then_one["step"] == 6
    assert max_weight_diff(proof_model().state_dict(), one["weights"]) > 1e-3    # training moved the weights
    other = short_run(tmp_path / "other-data", batch_size=16, seed=1)           # the same training on another data stream
    control = max_weight_diff(other["weights"], one["weights"])
    assert control > 1.0                                                          # what a wrong data stream does (48.7 measured)
    for name, w in (("2 ranks", r["full"]), ("1 then 2 ranks", r["one_then_two"]), ("2 then 1 rank", two_then_one["weights"])):
        # SGD runs (chapter 17, section 6): rounding-level distances, while a run on other batches ends `control` away
        assert max_weight_diff(w, one["weights"]) < 1e-4 * control, (name, max_weight_diff(w, one["weights"]), control)


def test_torchrun_two_cpu_processes_train_without_warnings(tmp_path):
    "The command chapter 17 prints, on 2 CPU processes (gloo): it trains, writes one checkpoint, and warns about nothing (no deprecated call, no DDP stride mismatch)."
    import os, subprocess, sys
    from clapbook.data import write_corpus
    from clapbook.train import CHECKPOINT, load_checkpoint
    data = write_corpus("soundworld", tmp_path / "sw", n=48, seed=0, workers=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}    # every warning shown, none hidden
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "clapbook.cli",
                        "train", "--data", str(data), "--out", str(tmp_path / "run"), "--batch-size", "4", "--max-steps", "3",
                        "--device", "cpu"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    for word in ("warn", "deprecat", "stride"):
        assert word not in r.stderr.lower(), r.stderr[-4000:]
    ck = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert ck["state"]["step"] == 3 and ck["state"]["world_size"] == 2
    assert (tmp_path / "run" / "last" / "model.safetensors").is_file() and "done: 3 steps" in r.stdout
