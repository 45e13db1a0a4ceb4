"""CNN14's memory layout: a training step of the tiny CLAP with the conv blocks on a channels_last image
(what `clapbook.audio_encoders.CNN14` does, chapter 4) against the same step in the default NCHW layout.

    python benchmarks/cnn14_layout.py                       # CPU, the quickstart's batch of 64
    python benchmarks/cnn14_layout.py --device cuda --batch-size 256

One step = front end + CNN14 + frozen-text lookup + projections + loss + backward + Adam on random
2-second clips. The two layouts are timed in alternating rounds in one process (so machine load hits
both alike); the table gives the median seconds per step, pairs/s and the ratio to NCHW. Writes
benchmarks/results/cnn14_layout.json.
"""
import argparse, copy, statistics, time, types

import torch
import torch.nn.functional as F

from clapbook.audio_encoders import normalize_mels, check_logmel
from clapbook.losses import clap_loss
from clapbook.model import CLAP, CLAP_PRESETS
from clapbook.train import pick_device
from record import save_results


def nchw_forward(self, logmel):
    "CNN14.forward without the channels_last copy (the naive layout)."
    x = normalize_mels(self.bn0, check_logmel(logmel, self.n_mels))
    n = len(self.config.channels)
    for i in range(n):
        x = getattr(self, f"conv_block{i + 1}")(x, pool=2 if i < n - 1 else 1)
        x = F.dropout(x, self.config.dropout, self.training)
    x = x.mean(dim=3)
    x = x.amax(dim=2) + x.mean(dim=2)
    x = F.dropout(x, self.config.fc_dropout, self.training)
    x = F.relu(self.fc1(x))
    emb = F.dropout(x, self.config.fc_dropout, self.training)
    return {"embedding": emb, "clipwise_output": torch.sigmoid(self.fc_audioset(x))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per layout per round")
    ap.add_argument("--no-save", action="store_true", help="print only; do not write benchmarks/results/cnn14_layout.json")
    args = ap.parse_args()
    dev = pick_device(args.device)
    torch.manual_seed(0)
    base = CLAP(CLAP_PRESETS["tiny"]).to(dev).train()
    fe = base.frontend
    wave = 0.1 * torch.randn(args.batch_size, int(fe.sample_rate * fe.clip_seconds), device=dev)
    caps = [f"a loud high-pitched whistle over light rain, take {i}" for i in range(args.batch_size)]
    tok = {k: v.to(dev) for k, v in base.tokenize(caps).items()}
    models = {"NCHW (naive)": copy.deepcopy(base), "channels_last (clapbook)": copy.deepcopy(base)}
    models["NCHW (naive)"].audio_encoder.forward = types.MethodType(nchw_forward, models["NCHW (naive)"].audio_encoder)
    opts = {k: torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-4) for k, m in models.items()}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step(name):
        m, opt = models[name], opts[name]
        a, t, s = m(wave, tok["input_ids"], tok["attention_mask"])
        clap_loss(a, t, s).backward(); opt.step(); opt.zero_grad(set_to_none=True)

    for name in models: step(name); step(name)                     # warm-up (and the text cache)
    times = {name: [] for name in models}
    for _ in range(args.rounds):
        for name in models:
            sync(); t0 = time.perf_counter()
            for _ in range(args.steps): step(name)
            sync(); times[name].append((time.perf_counter() - t0) / args.steps)
    ref = statistics.median(times["NCHW (naive)"])
    print(f"tiny CLAP training step, batch {args.batch_size}, {dev}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.rounds} rounds x {args.steps} steps")
    print(f"{'layout':28s} {'s/step':>8s} {'pairs/s':>8s} {'speed-up vs NCHW':>17s}")
    rows = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:28s} {med:8.3f} {args.batch_size / med:8.1f} {ref / med:16.2f}x")
        rows[name] = {"seconds_per_step": med, "pairs_per_s": args.batch_size / med, "speedup_vs_nchw": ref / med,
                      "round_seconds": ts}
    if not args.no_save:
        save_results("cnn14_layout", {"batch_size": args.batch_size, "rounds": args.rounds, "steps": args.steps,
                                      "device": str(dev), "layouts": rows})


if __name__ == "__main__":
    main()
