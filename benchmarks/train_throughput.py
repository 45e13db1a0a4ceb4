"""Training throughput (pairs/s) of each CLAP preset: tiny and published sizes of each encoder pair.

    python benchmarks/train_throughput.py                      # CPU, all presets
    python benchmarks/train_throughput.py --device cuda --batch-size 64

One optimiser step = front end + both encoders + projections + loss + backward + Adam, on
random audio of the preset's clip length and captions of ~12 tokens. Prints a table with
pairs/s, seconds per step and parameters, and the ratio to the tiny preset. The published
sizes use a small batch on the CPU (they are GPU models); pass --presets to choose.
The `tiny` preset's text tower is frozen and its features are cached per caption (chapter 5),
so after the warm-up step its text cost is a lookup, as in every epoch after the first.
Writes benchmarks/results/train_throughput.json.
"""
import argparse, time

import torch

from clapbook.losses import clap_loss
from clapbook.model import CLAP, CLAP_PRESETS
from clapbook.train import amp_dtype, pick_device
from record import save_results


def measure(name, batch_size, steps, device, amp):
    torch.manual_seed(0)
    model = CLAP(CLAP_PRESETS[name]).to(device).train()
    fe = model.frontend
    wave = 0.1 * torch.randn(batch_size, int(fe.sample_rate * fe.clip_seconds), device=device)
    tok = {k: v.to(device) for k, v in model.tokenize(["a loud high-pitched whistle over light rain"] * batch_size).items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    dtype = amp_dtype(amp, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            a, t, s = model(wave, **tok)
            loss = clap_loss(a.float(), t.float(), s.float())
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)

    step(); sync()                                  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps): step()
    sync()
    sec = (time.perf_counter() - t0) / steps
    return {"preset": name, "batch": batch_size, "s/step": sec, "pairs/s": batch_size / sec,
            "params (M)": model.num_parameters() / 1e6}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--presets", nargs="*", default=list(CLAP_PRESETS))
    ap.add_argument("--batch-size", type=int, default=32, help="batch for the tiny presets")
    ap.add_argument("--big-batch-size", type=int, default=None, help="batch for the published presets (default 4 on CPU, 32 on GPU)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--amp", default="auto")
    ap.add_argument("--no-save", action="store_true", help="print only; do not write benchmarks/results/train_throughput.json")
    args = ap.parse_args()
    dev = pick_device(args.device)
    big = args.big_batch_size or (32 if dev.type == "cuda" else 4)
    print(f"torch {torch.__version__}, device {dev}, {torch.get_num_threads()} CPU threads, amp {amp_dtype(args.amp, dev)}\n")
    rows = []
    for name in args.presets:
        bs = args.batch_size if name.startswith("tiny") else big
        rows.append(measure(name, bs, args.steps if name.startswith("tiny") else max(2, args.steps // 2), dev, args.amp))
        r = rows[-1]
        print(f"  measured {name}: {r['pairs/s']:.1f} pairs/s", flush=True)
    base = next((r["pairs/s"] for r in rows if r["preset"] == "tiny"), rows[0]["pairs/s"])
    print(f"\n{'preset':12s} {'batch':>5s} {'params (M)':>10s} {'s/step':>8s} {'pairs/s':>9s} {'vs tiny':>8s}")
    for r in rows:
        print(f"{r['preset']:12s} {r['batch']:5d} {r['params (M)']:10.1f} {r['s/step']:8.3f} {r['pairs/s']:9.1f} {r['pairs/s'] / base:8.3f}")
    if not args.no_save:
        save_results("train_throughput", {"device": str(dev), "amp": str(amp_dtype(args.amp, dev)), "steps": args.steps,
                                          "rows": [{**r, "vs_tiny": r["pairs/s"] / base} for r in rows]})


if __name__ == "__main__":
    main()
