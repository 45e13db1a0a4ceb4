"""Tests for the encoders experiment (clapbook.experiments.encoders): the sizes, the step curve read from one resumed
run, the claims that need both pairs, and the table with its curve."""
import pytest
from datasets import concatenate_datasets

import clapbook.experiments.encoders as ex
from clapbook.benchmark import embedded_tasks
from clapbook.sounds import instruments, soundworld


def test_sizes_name_known_pairs():
    pairs = ex.encoder_configs()
    assert tuple(pairs) == ex.ALL_PAIRS and set(ex.CURVE_PAIRS) <= set(pairs)
    for s in ex.ENCODER_SIZES.values():
        assert set(s["combos"]) <= set(pairs) and list(s["curve"]) == sorted(s["curve"])
    with pytest.raises(ValueError, match="unknown encoder pairs"): ex.run(size="test", combos=["cnn14+clip"])


def test_step_curve_stops_and_resumes_exactly():
    pairs = concatenate_datasets([g(n=240, seed=0)["train"].select_columns(["audio", "caption"]) for g in (soundworld, instruments)])
    tasks = embedded_tasks(n=240, seed=0, names=["sound events"])
    cfg = ex.encoder_configs()["cnn14+bert"]
    a = ex.step_curve(cfg, pairs, tasks, (3, 1), batch_size=8, seed=0)
    b = ex.step_curve(cfg, pairs, tasks, (3,), batch_size=8, seed=0)
    assert [r["step"] for r in a] == [1, 3] and a[-1]["score"] == pytest.approx(b[-1]["score"], abs=1e-6)
    assert set(a[0]["metrics"]) == {"sound events · accuracy"}


def test_claims_need_both_pairs_and_the_table_shows_the_curve():
    runs = [{"combo": c, "seed": s, "score": sc, "metrics": {"t · m": sc}}
            for s in (0, 1) for c, sc in (("cnn14+minilm", 0.5 + s / 100), ("htsat+minilm", 0.45), ("cnn14+gpt2", 0.3))]
    claims = ex.encoders_claims(runs)
    assert [c["id"] for c in claims] == ["htsat_vs_cnn14_minilm"] and not claims[0]["holds"]
    tables = {**ex.summarise(runs, ex.ALL_PAIRS), "curve_seed": 0,
              "curve": {"cnn14+minilm": [{"step": 50, "score": 0.3}, {"step": 100, "score": 0.4}]}}
    md = ex.encoders_table(tables)
    assert "| cnn14+minilm | 50.5 ± 0.7 |" in md and "| cnn14+minilm | 30.0 | 40.0 |" in md and "50 steps" in md
