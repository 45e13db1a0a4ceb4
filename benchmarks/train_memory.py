"""Training in bounded memory: the peak resident memory of one epoch of `clapbook train` on 1,024 and on 8,192
clips, and the training speed with clips decoded on demand against a cache of every decoded clip.

    python benchmarks/train_memory.py            # 1,024 vs 8,192 clips, one epoch each; speed at batch 64
    python benchmarks/train_memory.py --quick    # smoke test: 128 vs 512 clips, a few steps

Part 1. SoundWorld clips (2 s, 16 kHz, 16-bit WAV, one caption each) are generated once into a work folder; a
folder with a `metadata.csv` of the first N lists N of them. For each N, `clapbook train --data FOLDER --epochs 1
--batch-size 64 --out OUT` runs in its own child process, started by a small Python parent that reads
`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` once the child has exited: the peak resident set of that one
training run (on Linux, in KiB). Goal: the 8,192-clip run within 1.15x of the 1,024-clip run. One epoch at batch 64 is 16 steps on 1,024 clips and 128
on 8,192, and a training process's memory settles only after a few dozen steps (the allocator's pools fill up, then
stay flat), so a third run trains the 1,024 clips for 128 steps (8 epochs): the same work as the 8,192-clip epoch,
which isolates what the data's size costs.

Part 2. In this process, training steps of the tiny preset at batch 64 on the 1,024 clips: `PairDataset` decoding
every clip when it is read (the default), against one whose cache holds every decoded clip (warmed first). The
two are timed alternately, `--rounds` times (ABBA order, so that a change in the machine's load falls on both), the
same 8 steps each round (the files are in the page cache for both); each side's median pairs/s and the median of the
per-round ratios are kept. Goal: on demand within 10% of cached.

Writes benchmarks/results/train_memory.json (with the command, the machine, its load average and the date) through
`clapbook.files.write_json`, and prints both tables with their ratios.
"""
import argparse, csv, os, statistics, subprocess, sys, time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from record import header  # noqa: E402  (the provenance header every benchmark writes)


def _clip(i: int):
    from clapbook.sounds import SOUNDWORLD_CLASSES, clip_rng, soundworld_clip
    label = SOUNDWORLD_CLASSES[i % len(SOUNDWORLD_CLASSES)]
    x, meta = soundworld_clip(label, clip_rng(0, "soundworld", i), 16000, 2.0)
    return x, meta["caption"]


def make_clips(work: Path, n: int) -> Path:
    "n SoundWorld clips as WAV files in work/clips (generated once, in 2 processes) and their captions."
    import soundfile as sf
    clips = work / "clips"; clips.mkdir(parents=True, exist_ok=True)
    captions = work / "captions.csv"
    have = list(csv.reader(open(captions))) if captions.exists() else []
    if len(have) < n:
        with Pool(2) as pool:
            for i, (x, cap) in enumerate(pool.imap(_clip, range(len(have), n), chunksize=16), start=len(have)):
                sf.write(clips / f"sw_{i:05d}.wav", x, 16000, subtype="PCM_16"); have.append([f"sw_{i:05d}.wav", cap])
        with open(captions, "w", newline="") as f: csv.writer(f).writerows(have)
    return clips


def folder_of(work: Path, n: int) -> Path:
    "A folder whose metadata.csv lists the first n clips."
    folder = work / f"train-{n}"; folder.mkdir(exist_ok=True)
    rows = list(csv.reader(open(work / "captions.csv")))[:n]
    with open(folder / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["file_name", "caption"]); w.writerows([[f"../clips/{a}", b] for a, b in rows])
    return folder


PARENT = ("import resource, subprocess, sys, time; t = time.perf_counter(); r = subprocess.run(sys.argv[1:]); "
          "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode, time.perf_counter() - t)")


def peak_rss(folder: Path, out: Path, batch: int, extra) -> dict:
    "Peak RSS (MiB) and wall seconds of one `clapbook train` child on `folder`, read by its own parent process."
    cmd = [sys.executable, "-m", "clapbook.cli", "train", "--data", str(folder), "--out", str(out),
           "--batch-size", str(batch), "--device", "cpu", *extra]
    r = subprocess.run([sys.executable, "-c", PARENT, *cmd], capture_output=True, text=True, cwd=ROOT)
    kib, rc, wall = r.stdout.split()[-3:]
    if rc != "0": raise SystemExit(f"clapbook train failed:\n{r.stderr[-3000:]}")
    return {"peak_rss_mib": int(kib) / 1024, "wall_seconds": float(wall)}


def speed(folder: Path, rounds: int, steps: int, batch: int) -> dict:
    "Median pairs/s of `steps` training steps at `batch`, decoding on demand vs from a warm cache, timed alternately."
    import torch
    from clapbook.data import PairDataset, load_clips
    from clapbook.model import CLAP, CLAP_PRESETS
    from clapbook.train import TrainConfig, train
    ds = load_clips(folder, check=False)["train"]
    torch.manual_seed(0); model = CLAP(CLAP_PRESETS["tiny"])
    sr, secs = model.frontend.sample_rate, model.frontend.clip_seconds
    sides = {"on demand": PairDataset(ds, sr, secs, model.frontend.pad),
             "cached": PairDataset(ds, sr, secs, model.frontend.pad, cache_bytes=2 ** 34)}
    for i in range(len(ds)): sides["cached"].waveform(i)                   # warm: every clip decoded and kept
    cfg = TrainConfig(max_steps=steps, batch_size=batch, progress=False, scheduler="constant", device="cpu", log_every=10 ** 9)
    rates = {k: [] for k in sides}
    train(model, sides["on demand"], cfg)                                  # warm-up: the text cache, the allocator
    for r in range(rounds):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):   # ABBA: a trend in the load falls on both
            t = time.perf_counter(); train(model, sides[name], cfg); rates[name].append(steps * batch / (time.perf_counter() - t))
    ratios = [a / b for a, b in zip(rates["on demand"], rates["cached"])]
    return {**{k: {"pairs_per_s": statistics.median(v), "rounds": [round(x, 2) for x in v]} for k, v in rates.items()},
            "ratio": statistics.median(ratios), "round_ratios": [round(x, 3) for x in ratios]}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128 vs 512 clips and 2 rounds of 2 steps (smoke test)")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "clapbook-bench-train-memory"))
    ap.add_argument("--rounds", type=int, default=5); ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=None, help="results file (default benchmarks/results/train_memory.json; --quick: in --work)")
    args = ap.parse_args(argv)
    args.out = args.out or (Path(args.work) / "train_memory-quick.json" if args.quick else ROOT / "benchmarks" / "results" / "train_memory.json")
    small, large = (128, 512) if args.quick else (1024, 8192)
    steps, rounds = (2, 2) if args.quick else (8, args.rounds)
    head = header(argv)                                                    # the code as it is when the run starts
    work = Path(args.work); make_clips(work, large)
    load = {"before": [round(x, 2) for x in os.getloadavg()]}
    steps_large = large // args.batch_size
    runs = {f"{small} clips, one epoch": (small, ["--epochs", "1"]), f"{large} clips, one epoch": (large, ["--epochs", "1"]),
            f"{small} clips, {steps_large} steps": (small, ["--max-steps", str(steps_large)])}
    memory = {}
    for name, (n, flags) in runs.items():                                  # each in its own child process
        memory[name] = {"clips": n, **peak_rss(folder_of(work, n), work / f"run-{n}-{flags[-1]}", args.batch_size, ["--seed", "0", *flags]),
                        "load_average": [round(x, 2) for x in os.getloadavg()]}
        print(f"{name}: peak RSS {memory[name]['peak_rss_mib']:.0f} MiB, {memory[name]['wall_seconds']:.0f} s")
    a, b, c = (memory[k]["peak_rss_mib"] for k in runs)
    rss_ratio, same_work_ratio = b / a, b / c
    pace = speed(folder_of(work, small), rounds, steps, args.batch_size)
    speed_ratio = pace["ratio"]
    load["after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\n| run | peak RSS (MiB) | wall (s) |\n|---|---|---|")
    for k, v in memory.items(): print(f"| {k} | {v['peak_rss_mib']:.0f} | {v['wall_seconds']:.0f} |")
    print(f"ratio, one epoch each ({large:,} / {small:,} clips): {rss_ratio:.3f}x (goal <= 1.15x)")
    print(f"ratio, the same {steps_large} steps: {same_work_ratio:.3f}x\n")
    print(f"| batch {args.batch_size} | pairs/s (median of {rounds}) |\n|---|---|")
    for k in ("on demand", "cached"): print(f"| {k} | {pace[k]['pairs_per_s']:.1f} |")
    print(f"ratio on demand / cached (median of the rounds' ratios): {speed_ratio:.3f} (goal >= 0.90)")
    from clapbook.files import write_json
    result = {"benchmark": "train_memory", **head, "load_average": load, "quick": args.quick,
              "memory": {"clips": [small, large], "batch_size": args.batch_size, "runs": memory, "ratio": rss_ratio,
                         "same_steps_ratio": same_work_ratio, "goal": "<= 1.15", "holds": rss_ratio <= 1.15},
              "speed": {"batch_size": args.batch_size, "steps_per_round": steps, "clips": small, **pace,
                        "goal": ">= 0.90", "holds": speed_ratio >= 0.90}}
    print(f"wrote {write_json(args.out, result)}")
    return result


if __name__ == "__main__":
    main()
