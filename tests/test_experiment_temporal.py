"""Tests for clapbook.experiments.temporal beyond its notebook: the trained top text layer, the per-example
T-Classify and its groups, the fold diagnostic, the spread seams of the temporal data, and the claims."""
import numpy as np
import pytest
import torch

import clapbook.experiments.temporal as ex
from clapbook.sounds import soundworld
from clapbook.temporal import Event, evaluate_temporal, event_bank, temporal_example, temporal_set


@pytest.fixture(scope="module")
def bank():
    return event_bank(soundworld(n=96, seed=0)["test"], name="soundworld/test")


def _events(labels, seconds=1.9, sr=16000):
    rng = np.random.default_rng(0)
    return [Event(l, (0.1 * rng.standard_normal(int(seconds * sr))).astype(np.float32), f"t/{l}") for l in labels]


def test_min_share_spreads_seams_and_keeps_every_share():
    evs, n = _events(["bell", "siren", "rain"]), 32000
    for i in range(50):
        x = temporal_example(evs[:2], np.random.default_rng(i), min_share=0.15)
        lengths = [e["offset"] - e["onset"] for e in x["events"]]
        assert min(lengths) >= 0.15 * (2.0 - 0.05 - 0.15 - 0.02) - 0.01          # each event gets at least its share
        assert [e["label"] for e in x["negative_events"]] == ["siren", "bell"]
    seams = [temporal_example(evs[:2], np.random.default_rng(i), min_share=0.15)["events"][1]["onset"] for i in range(200)]
    assert np.std(seams) > 0.2 and min(seams) < 0.6 and max(seams) > 1.4
    equal = [temporal_example(evs[:2], np.random.default_rng(i))["events"][1]["onset"] for i in range(50)]
    assert np.ptp(equal) < 0.25                                                   # equal shares: always near the middle
    x3 = temporal_example(evs, np.random.default_rng(3), min_share=1 / 3)         # the largest share: equal thirds
    lengths = [e["offset"] - e["onset"] for e in x3["events"]]
    assert max(lengths) - min(lengths) < 0.01
    with pytest.raises(ValueError, match="min_share"): temporal_example(evs, np.random.default_rng(0), min_share=0.4)


def test_top_text_layer_matches_frozen_tower_then_trains_alone():
    m = ex.build_clap("cnn14").eval()
    caps = ["a bell rings, then a siren wails", "a siren wails after a bell rings"]
    ref = m.encode_text(**m.tokenize(caps)).detach()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    ex.train_top_text_layers(m, 1)
    torch.testing.assert_close(m.embed_text(caps), torch.nn.functional.normalize(ref, dim=-1), atol=1e-5, rtol=0)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    loss = -(m.encode_text(**m.tokenize(caps[:1])) * m.encode_text(**m.tokenize(caps[1:]))).sum()
    loss.backward(); opt.step()
    changed = {k.split(".")[0] + ("." + k.split(".")[4] if k.startswith("text_encoder.model.encoder.layer") else "")
               for k, v in m.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"text_encoder.5", "text_projection"}                       # the top MiniLM layer and the projection
    assert len(m.text_top_layers_cache) == 2                                       # one cached row per caption
    with pytest.raises(ValueError, match="n_layers"): ex.train_top_text_layers(ex.build_clap("cnn14"), 7)


def test_outcomes_agree_with_chapter_09_and_groups_partition(bank):
    m = ex.build_clap("cnn14").eval()
    xs = temporal_set(bank, 30, seed=4, min_share=0.15)
    o = ex.temporal_outcomes(m, xs)
    ref = evaluate_temporal(m, xs)
    assert 100 * o["t2a"].mean() == pytest.approx(ref["text_to_audio"]) and 100 * o["a2t"].mean() == pytest.approx(ref["audio_to_text"])
    assert o["reversal_cos"] == pytest.approx(ref["reversal_cosine"], abs=1e-5)
    g = ex.group_scores(xs, o)
    assert g["after"]["n"] + g["2 events, other connectors"]["n"] == g["2 events"]["n"]
    assert g["2 events"]["n"] + g["3 events"]["n"] == len(xs)
    assert g["seam on the fold (< 0.1 s)"]["n"] + g["seam inside a band (> 0.3 s)"]["n"] <= g["2 events"]["n"]
    empty = ex.group_scores(xs[:0], {"t2a": np.zeros(0, bool), "a2t": np.zeros(0, bool)})
    assert empty["after"] == {"t2a": None, "a2t": None, "n": 0}


def test_seam_from_middle():
    x = {"audio": np.zeros(32000), "sample_rate": 16000, "events": [{"onset": 0.0}, {"onset": 1.25}, {"onset": 0.9}]}
    assert ex.seam_from_middle(x) == pytest.approx(0.1)


def test_fold_diagnostic_sees_the_band_swap_on_the_fold():
    evs = _events(["bell", "siren"])
    bell = Event("bell", np.sin(np.arange(32000) * 0.05).astype(np.float32), "a")   # two very different sounds
    siren = Event("siren", np.sign(np.sin(np.arange(32000) * 0.9)).astype(np.float32) * 0.3, "b")
    on = temporal_example([bell, siren], np.random.default_rng(0), max_overlap=0.0, max_gap=0.0)   # equal shares: seam ~1 s
    d = ex.fold_diagnostic(ex.build_clap("htsat"), [on])
    b = d["bins"]["on the fold (< 0.1 s)"]
    assert b["n"] == 1 and b["img_swap_cos"] > 0.9 and b["img_swap_cos"] > b["img_cos"]
    assert 0 < d["band_swap_cos"] <= 1.0 + 1e-6
    assert ex.fold_diagnostic(ex.build_clap("htsat"), [temporal_example(evs + _events(["rain"]), np.random.default_rng(0))]) is None
    assert ex.fold_diagnostic(ex.build_clap("cnn14"), [on]) is None


def test_claims_name_the_departure_and_use_the_own_control():
    runs = [{"arm": a, "seed": s, "results": {st: {k: 50.0 + (30.0 if st == ex.STAGES[2] else 0.0) for k in ex.METRICS}
                                              for st in ex.STAGES}} for a in ex.ARMS for s in (0, 1, 2)]
    nofold2 = next(r for r in runs if r["arm"] == "htsat-nofold" and r["seed"] == 2)
    nofold2["results"][ex.STAGES[1]]["t_classify_a2t"] = 66.0                    # a margin of 14 only
    next(r for r in runs if r["arm"] == "htsat")["results"][ex.STAGES[2]]["t_classify_t2a"] = 0.0   # the faithful arm is no claim
    cl = {c["id"]: c for c in ex.temporal_claims(runs)}
    assert list(cl) == ["cnn14_t2a", "cnn14_a2t", "htsat_t2a", "htsat_a2t"]
    assert cl["cnn14_t2a"]["holds"] and cl["htsat_t2a"]["holds"] and not cl["htsat_a2t"]["holds"]
    assert "departure" in cl["htsat_t2a"]["text"] and "departure" not in cl["cnn14_t2a"]["text"]
    assert [c["min_margin"] for c in cl.values()] == [20.0, 15.0, 15.0, 15.0]
