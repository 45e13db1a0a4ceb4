"""The curation experiment's pieces (clapbook.experiments.curation, nbs/experiments/10_curation.ipynb): the world of
paper 2's Table-3 regime, the curated arms (oracle and shuffled included), label precision, the soft-label mass and the
claims. The whole run at the `test` size is in tests/test_experiments.py."""
import numpy as np
import pytest
import torch

import clapbook.experiments.curation as ex
from clapbook.model import CLAP, CLAP_PRESETS

SZ = ex.CURATION_SIZES["test"]


@pytest.fixture(scope="module")
def world():
    return ex.table3_world(SZ, seed=0)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return CLAP(CLAP_PRESETS["tiny"]).eval()


@pytest.fixture(scope="module")
def curated(teacher, world):
    return ex.curate_sets(teacher, world, keep=0.5, seed=0)


def test_world_holds_the_gap_the_pool_fills(world):
    (pw, pm), (qw, qm) = world["paired"], world["pool"]
    n = int(ex.SAMPLE_RATE * ex.SECONDS)
    assert pw.shape == (len(pm), n) and qw.shape == (len(qm), n)
    count = lambda meta, c: sum(m["label"] == c for m in meta)
    for c in ex.CLASSES:   # the paired set is short of the rare classes; the pool has every class alike
        assert count(pm, c) == (SZ["rare_pairs"] if c in ex.RARE_CLASSES else SZ["common_pairs"])
        assert count(qm, c) == SZ["pool_per_class"]
    assert {m["corpus"] for m in qm} == {"soundworld", "instruments"}
    assert [m["caption"] for m in world["bank"][:len(pm)]] == [m["caption"] for m in pm]
    assert len(world["test"][1]) == SZ["n_test"] and len(world["valid"][1]) == SZ["n_valid"]
    again = ex.table3_world(SZ, seed=0)
    assert torch.equal(again["test"][0], world["test"][0]) and again["bank"] == world["bank"]
    assert not torch.equal(ex.table3_world(SZ, seed=1)["pool"][0], world["pool"][0])


def test_top_fraction_and_label_precision():
    assert ex.top_fraction(np.arange(11), 0.5) == 5.0 and ex.top_fraction([3.0, 1.0], 1.0) == 1.0
    assert ex.label_precision(["a", "b"], ["a", "b"]) == 100.0 and ex.label_precision(["a", "b"], ["b", "a"]) == 0.0
    assert np.isnan(ex.label_precision([], []))


def test_curated_arms(curated, world):
    sets, st = curated["sets"], curated["stats"]
    n_paired, n_bank = len(world["paired"][1]), len(world["bank"])
    ads_clips, ads_caps, src = sets["ads"]
    assert src == "pool" and len(ads_clips) == len(set(ads_clips.tolist()))
    assert np.array_equal(sets["oracle"][0], ads_clips) and np.array_equal(sets["shuffled"][0], ads_clips)
    assert [curated["captions"][i] for i in sets["oracle"][1]] == [world["pool"][1][j]["caption"] for j in ads_clips]
    assert sorted(sets["shuffled"][1].tolist()) == sorted(ads_caps.tolist())
    assert (ads_caps < n_bank).all() and (sets["du"][1] < n_bank).all()
    assert np.array_equal(sets["ds"][0], sets["ds"][1]) and (sets["ds"][0] < n_paired).all()
    assert np.array_equal(sets["paired"][0], np.arange(n_paired))
    n_pool = len(world["pool"][1])
    assert abs(len(ads_clips) - n_pool / 2) <= 1 and abs(len(sets["du"][0]) - n_pool / 2) <= 1   # keep = 0.5
    assert st["label_precision"]["oracle-ADS"] == 100.0 and 0 <= st["label_precision"]["ADS"] <= 100
    assert st["pairs"] == {k: len(v[0]) for k, v in sets.items()}
    cap_label = [m["label"] for m in world["bank"]]
    want = ex.label_precision([world["pool"][1][j]["label"] for j in ads_clips], [cap_label[i] for i in ads_caps])
    assert st["label_precision"]["ADS"] == pytest.approx(want)


def test_soft_label_mass_bounds():
    alike, apart = torch.ones(16, 4), torch.eye(16)
    assert ex.soft_label_mass(alike, 16, 0.3, 20.0) == pytest.approx(0.3 * (1 - 1 / 16))
    assert ex.soft_label_mass(apart, 16, 0.3, 100.0) == pytest.approx(0.0, abs=1e-6)
    assert ex.soft_label_mass(apart, 16, 0.0, 5.0) == pytest.approx(0.0, abs=1e-7)   # beta 0: hard labels
    e = torch.nn.functional.normalize(torch.randn(64, 8) + 2, dim=-1)
    masses = [ex.soft_label_mass(e, 16, 0.3, s) for s in (5.0, 10.0, 30.0)]
    assert masses[0] > masses[1] > masses[2] > 0                                     # a sharper scale: nearer one-hot


def test_fit_student_moves_a_copy_and_draws_a_curve(teacher, curated, world):
    text = torch.cat([curated["emb"]["bank"], curated["emb"]["true"]]).numpy()
    from clapbook.curation import TeacherPairs
    a, c, _ = curated["sets"]["ads"]
    pairs = TeacherPairs(list(world["pool"][0]), curated["captions"], a, c, curated["emb"]["pool"].numpy(), text)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    calls = []
    student, points = ex.fit_student(teacher, pairs, steps=8, lr=1e-3, batch_size=8, seed=0, beta=0.3,
                                     curve=ex._every(2, 1, lambda m: calls.append(1) or 42.0))
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())          # the teacher is untouched
    assert any(not torch.equal(v, student.state_dict()[k]) for k, v in before.items() if v.is_floating_point())
    assert points and all(p[1] == 42.0 for p in points) and len(points) == len(calls)


def _run(seed, ads, shuffled=40.0):
    acc = {"control": 60.0, "DU": 62.0, "DS": 55.0, "ADS": ads, "ADS+SL": 64.0, "oracle-ADS": 70.0, "shuffled-ADS": shuffled}
    arm = lambda a: {s: {"acc": a, "rare": a, "common": a} for s in ("valid", "test")}
    return {"seed": seed, "teacher": arm(59.0), "arms": {k: arm(v) for k, v in acc.items()}, "curation": {}}


def test_claims_are_per_seed_with_their_margins():
    got = {c["id"]: c for c in ex.curation_claims([_run(0, 63.0), _run(1, 61.5), _run(2, 71.5)])}
    assert list(got) == list(ex.CLAIMS)
    assert got["ads_vs_control"]["min_margin"] == 1.0 and got["oracle_vs_ads"]["min_margin"] == -1.0
    assert got["ads_vs_control"]["holds"] and got["ads_sl_vs_control"]["holds"]
    assert not got["oracle_vs_ads"]["holds"]                       # seed 2: oracle 70.0 is ADS 71.5 minus 1.5
    assert got["oracle_vs_ads"]["control_per_seed"] == [63.0, 61.5, 71.5]
    assert not {c["id"]: c for c in ex.curation_claims([_run(0, 60.9)])}["ads_vs_control"]["holds"]
    assert not {c["id"]: c for c in ex.curation_claims([_run(0, 63.0, shuffled=65.0)])}["ads_vs_shuffled"]["holds"]


def test_run_refuses_unknown_arms_and_sizes(tmp_path):
    with pytest.raises(ValueError, match="unknown arms"): ex.run(size="test", seeds=(0,), out_dir=tmp_path, arms=("ADS", "nope"))
    with pytest.raises(ValueError, match="choose from"): ex.run(size="base", seeds=(0,), out_dir=tmp_path)
    with pytest.raises(ValueError, match="at least one seed"): ex.run(size="test", seeds=(), out_dir=tmp_path)
