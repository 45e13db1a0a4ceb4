"""The training loop beyond chapter 7's specification (exact resume is checked there): logs, atomic
checkpoints without pickle, old .pt checkpoints, safe loading, the temperature cap, argument errors, the loss options."""
import json
import math
from dataclasses import asdict

import pytest
import torch

from clapbook.model import CLAP, CLAP_PRESETS
from clapbook.sounds import soundworld
from clapbook.train import (CHECKPOINT, TrainConfig, clap_pair_loss, load_checkpoint, load_state, make_optimizer,
                            make_scheduler, optimizer_step, save_state, train)


@pytest.fixture(scope="module")
def pairs():
    return soundworld(n=96, seed=3)["train"].select(range(64))


def _fresh():
    torch.manual_seed(0)
    return CLAP(CLAP_PRESETS["tiny"])


def test_training_changes_weights_and_logs(pairs, tmp_path):
    m = _fresh(); before = {k: v.clone() for k, v in m.state_dict().items()}
    state = train(m, pairs, TrainConfig(max_steps=4, batch_size=16, progress=False, log_every=1), out_dir=tmp_path)
    assert any(not torch.equal(before[k], v) for k, v in m.state_dict().items())
    rows = [r for r in state["history"] if r["kind"] == "train"]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(r["loss"] > 0 for r in rows)
    assert (tmp_path / "log.jsonl").read_text().count("\n") == 4
    assert (tmp_path / "last" / "model.safetensors").exists()


def test_checkpoint_is_safetensors_and_json_without_pickle(pairs, tmp_path):
    from safetensors import safe_open
    train(_fresh(), pairs, TrainConfig(max_steps=2, batch_size=16, progress=False), out_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.safetensors"]
    ck = load_checkpoint(tmp_path / CHECKPOINT)
    assert ck["state"]["step"] == 2 and "optimizer" in ck and "rng" in ck
    assert isinstance(ck["optimizer"]["param_groups"][0]["betas"], tuple) and 0 in ck["optimizer"]["state"]
    with safe_open(str(tmp_path / CHECKPOINT), "pt") as f:                 # the header is plain JSON ...
        skeleton = json.loads(f.metadata()["state"])
        assert skeleton["state"]["step"] == 2 and skeleton["train_config"]["batch_size"] == 16
        assert any(k.startswith("/model/") for k in f.keys()) and any(k.startswith("/optimizer/") for k in f.keys())
    assert b"\x80\x04" not in (tmp_path / CHECKPOINT).read_bytes()[:8]     # ... and the file is no pickle


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path):
    path = save_state({"v": torch.tensor(1)}, tmp_path / "ck.safetensors")
    with pytest.raises(TypeError, match="cannot store a object"):
        save_state({"v": torch.tensor(2), "bad": object()}, path)
    assert int(load_checkpoint(path)["v"]) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]


def test_unreadable_checkpoint_is_named(tmp_path):
    for name, data in (("last.pt", b"not a checkpoint"), ("last.safetensors", b"not a checkpoint either")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=f"cannot read checkpoint .*{name}"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing.safetensors")
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "weights.safetensors"))      # safetensors, but not a training state
    with pytest.raises(ValueError, match="not a clapbook training state"):
        load_checkpoint(tmp_path / "weights.safetensors")


def test_resume_is_exact_from_the_new_format_and_from_an_old_pt(pairs, tmp_path):
    "20 steps in one go = 10 + resume + 10, from last.safetensors and from the same checkpoint saved the old way (torch.save)."
    cfg = TrainConfig(max_steps=8, batch_size=16, scheduler="cosine", warmup_steps=2, progress=False, log_every=2)
    whole = _fresh(); train(whole, pairs, cfg, out_dir=tmp_path / "whole")
    train(_fresh(), pairs, cfg, out_dir=tmp_path / "cut", stop_at_step=4)
    old = tmp_path / "old"; (old / "checkpoints").mkdir(parents=True)
    torch.save(load_state(tmp_path / "cut" / CHECKPOINT), old / "checkpoints" / "last.pt")   # an older clapbook's checkpoint
    for folder in (tmp_path / "cut", old):
        m = _fresh(); state = train(m, pairs, cfg, out_dir=folder, resume=True)
        assert state["step"] == 8
        assert all(torch.equal(p, q) for p, q in zip(whole.state_dict().values(), m.state_dict().values())), folder
    assert (old / CHECKPOINT).is_file()                                     # it now saves the new format
    log = [json.loads(l) for l in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6, 8]                       # no step logged twice across the resume


def test_a_temperature_over_the_cap_comes_back_and_keeps_its_gradient(pairs):
    "The cap is on the parameter after the step: pushed over it, the parameter still gets a gradient and returns below."
    m = _fresh().train()
    cap = math.log(m.config.max_logit_scale)
    with torch.no_grad(): m.log_logit_scale.fill_(cap + 1.0)
    assert m.logit_scale.item() > 100                                     # the forward pass does not clamp
    waves = torch.randn(4, 32000) * 0.1
    batch = (waves, ["a bell", "rain", "a dog", "a siren"])
    cfg = TrainConfig(optimizer="sgd", lr=0.05, clip_grad_norm=None, scheduler="constant")
    opt = make_optimizer([m.log_logit_scale], cfg)
    sched, scaler = make_scheduler(opt, cfg, 10), torch.amp.GradScaler("cuda", enabled=False)
    seen = []
    for _ in range(3):
        clap_pair_loss(m, batch).backward()
        seen.append((m.log_logit_scale.item(), float(m.log_logit_scale.grad)))
        optimizer_step(m, opt, sched, scaler, cfg)
    assert all(g != 0 for _, g in seen)                                   # a gradient at and above the cap
    assert seen[1][0] <= cap + 1e-6 and m.log_logit_scale.item() < cap    # capped after the first step, then below it


def test_bad_arguments(pairs):
    with pytest.raises(ValueError, match="scheduler"):
        train(_fresh(), pairs, TrainConfig(max_steps=1, batch_size=16, scheduler="linear", progress=False))
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(_fresh(), pairs.select(range(4)), TrainConfig(max_steps=1, batch_size=16, progress=False))
    with pytest.raises(ValueError, match="no column"):
        train(_fresh(), pairs.remove_columns("caption"), TrainConfig(max_steps=1, batch_size=16, progress=False))


def test_make_optimizer_by_name():
    from clapbook.train import make_optimizer
    params = [torch.nn.Parameter(torch.zeros(3))]
    for name, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)):
        opt = make_optimizer(params, TrainConfig(optimizer=name, lr=0.5, weight_decay=0.1))
        assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["weight_decay"] == 0.1
    assert make_optimizer(params, TrainConfig(optimizer="sgd")).param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError, match="adam|adamw|sgd, not 'lamb'"):
        make_optimizer(params, TrainConfig(optimizer="lamb"))


def test_local_loss_option_reaches_the_loss_function(pairs):
    seen = []
    def loss_fn(model, batch, local_loss=False):
        seen.append(local_loss)
        from clapbook.train import clap_pair_loss
        return clap_pair_loss(model, batch, local_loss=local_loss)
    train(_fresh(), pairs, TrainConfig(max_steps=1, batch_size=16, progress=False, local_loss=True), loss_fn=loss_fn)
    train(_fresh(), pairs, TrainConfig(max_steps=1, batch_size=16, progress=False), loss_fn=loss_fn)
    assert seen == [True, False]
