"""Pairs per second of the training step on 1 and 2 CPU ranks (gloo), and the share of a step spent communicating.

    OMP_NUM_THREADS=1 python benchmarks/ddp.py [--steps 6] [--batch-size 16] [--repeats 2]

Each rank keeps `--batch-size` pairs (the global batch grows with the ranks). The 1-rank and
2-rank runs alternate `--repeats` times so that other load on the machine affects both. The
communication share compares a 2-rank step with the same step on the same ranks without the
all-gathers of the loss and without DDP's gradient all-reduce (`no_sync`): what the ranks
spend talking (and waiting for each other). On a machine with GPUs it also runs 1 and 2 GPUs
(NCCL) through torchrun-style ranks when `--gpu` is given.
"""
import argparse, os, platform, statistics, time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from clapbook.distributed import proof_model, run_ranks
from clapbook.losses import clap_loss, upcast
from clapbook.ranks import LossModule, rank_and_world
from clapbook.train import clap_pair_loss, collate_pairs, PairDataset


def _pair_loss(model, batch, communicate: bool = True):
    "The training loss over every rank's pairs (`clap_pair_loss`), or, without `communicate`, over this rank's pairs only."
    if communicate: return clap_pair_loss(model, batch)
    waves, caps = batch
    a, t, scale = model(waves, **{k: v.to(waves.device) for k, v in model.tokenize(caps).items()})
    return clap_loss(upcast(a), upcast(t), upcast(scale))
from clapbook.audio import FRONTENDS


def _bench(steps: int, batch_size: int) -> dict:
    from clapbook.sounds import soundworld
    rank, world = rank_and_world()
    fe = FRONTENDS["tiny"]
    data = soundworld(n=max(64, 4 * batch_size), seed=rank)["train"]
    pairs = PairDataset(data, fe.sample_rate, fe.clip_seconds, fe.pad, train=False)
    batch = collate_pairs([pairs[i] for i in range(batch_size)])
    model = proof_model().train()
    ddp = DistributedDataParallel(LossModule(model, _pair_loss), find_unused_parameters=True) if world > 1 else None
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step(communicate: bool):
        if ddp is None: loss = clap_pair_loss(model, batch); loss.backward()
        elif communicate:
            loss = ddp(batch); loss.backward()
        else:
            with ddp.no_sync():                        # no gradient all-reduce, and the loss on local pairs only
                loss = ddp(batch, communicate=False); loss.backward()
        opt.step(); opt.zero_grad(set_to_none=True)

    def timed(communicate: bool) -> float:
        if world > 1: dist.barrier()
        t0 = time.perf_counter(); step(communicate)
        if world > 1: dist.barrier()
        return time.perf_counter() - t0

    for _ in range(2): step(True)                      # warm-up: allocator, text-feature cache
    full, local = [], []
    for _ in range(steps):
        full.append(timed(True))
        if world > 1: local.append(timed(False))
    s_full = statistics.median(full)
    s_local = statistics.median(local) if local else s_full
    return {"world": world, "step_s": s_full, "compute_s": s_local, "pairs_per_s": world * batch_size / s_full}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=6); p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    rows = {1: [], 2: []}
    for _ in range(a.repeats):                         # alternate, so that the machine's other load hits both
        for world in (1, 2):
            rows[world].append(run_ranks(_bench, world, args=(a.steps, a.batch_size), timeout_s=900)[0])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"gloo on CPU; SHARED with other jobs while measured (ratios are indicative)")
    print(f"tiny CLAP (CNN14 tiny + frozen MiniLM), {a.batch_size} pairs per rank, median of {a.steps} steps, {a.repeats} alternating repeats\n")
    print("| ranks | global batch | pairs/s | step (ms) | step without communication (ms) | communication share |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(r["pairs_per_s"] for r in rows[1])
    for world in (1, 2):
        pps = statistics.median(r["pairs_per_s"] for r in rows[world])
        st = statistics.median(r["step_s"] for r in rows[world]); cs = statistics.median(r["compute_s"] for r in rows[world])
        share = "-" if world == 1 else f"{max(0.0, 1 - cs / st):.0%}"
        print(f"| {world} | {world * a.batch_size} | {pps:.1f} ({pps / base:.2f}x) | {st * 1e3:.0f} | {cs * 1e3:.0f} | {share} |")


if __name__ == "__main__":
    main()
