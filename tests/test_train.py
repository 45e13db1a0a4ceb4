"""The training loop beyond chapter 7's specification (exact resume is checked there): logs, atomic
checkpoints, safe loading, argument errors, the loss options."""
from dataclasses import asdict

import pytest
import torch

from clapbook.model import CLAP, CLAP_PRESETS
from clapbook.sounds import soundworld
from clapbook.train import TrainConfig, atomic_save, load_checkpoint, train


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


def test_checkpoint_loads_with_weights_only(pairs, tmp_path):
    train(_fresh(), pairs, TrainConfig(max_steps=2, batch_size=16, progress=False), out_dir=tmp_path)
    ck = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ck["state"]["step"] == 2 and "optimizer" in ck and "rng" in ck


def test_atomic_save_survives_a_crash_mid_write(tmp_path, monkeypatch):
    path = atomic_save({"v": torch.tensor(1)}, tmp_path / "ck.pt")
    def broken_save(obj, f):
        f.write(b"partial"); raise KeyboardInterrupt("killed mid-write")
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"v": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert int(load_checkpoint(path)["v"]) == 1            # the previous checkpoint is intact


def test_unreadable_checkpoint_is_named(tmp_path):
    bad = tmp_path / "last.pt"; bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="last.pt"):
        load_checkpoint(bad)


def test_bad_arguments(pairs):
    with pytest.raises(ValueError, match="scheduler"):
        train(_fresh(), pairs, TrainConfig(max_steps=1, batch_size=16, scheduler="linear", progress=False))
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(_fresh(), pairs.select(range(4)), TrainConfig(max_steps=1, batch_size=16, progress=False))
    with pytest.raises(ValueError, match="no column"):
        train(_fresh(), pairs.remove_columns("caption"), TrainConfig(max_steps=1, batch_size=16, progress=False))


def test_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    atomic_save({"v": torch.tensor(1)}, tmp_path / "ck.pt")
    monkeypatch.setattr(torch, "save", lambda obj, f: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        atomic_save({"v": torch.tensor(2)}, tmp_path / "ck.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


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
