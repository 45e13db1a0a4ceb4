"""Curation at scale: top-k caption search for a pool of clips, memory-mapped on disk (chapter 10).

Pool clips x captions, unit vectors of dimension 1,024 standing in for teacher embeddings, written
as .npy files and searched with `clapbook.curation.chunked_search` (top-10 per clip plus every pair
above a threshold; one clip in 1,000 is planted next to a caption, so the threshold keeps a few).
Paper 2's scale is 1,000,000 clips x 100,000 captions: 2e14 multiply-adds, hours on a 2-core CPU.

    python benchmarks/curation_scale.py                                  # a sweep of pool sizes (minutes)
    python benchmarks/curation_scale.py --pools 1000000                  # the full size (4 GB on disk; hours on a CPU)
    python benchmarks/curation_scale.py --pools 1000000 --device cuda    # on a GPU

For each pool size a fresh process runs the search, so its peak memory (ru_maxrss, which counts
the Python and torch runtime too) is the search's alone. The script measures this machine's
float32 matmul rate (best of 3 products of the shape of one search block, in the search's own
process just before it) and prints the search's rate as a fraction of it, then fits wall time =
fixed + per-clip x pool and extrapolates to the full size (labelled as an extrapolation).
"""
import argparse, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch


def write_unit_vectors(path, n, d, seed, plant_from=None, every=1000, chunk=65536):
    "n unit vectors (float32, .npy memory-mapped), written a chunk at a time; every `every`-th is planted near a row of `plant_from`."
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(seed)
    for s in range(0, n, chunk):
        x = rng.standard_normal((min(n, s + chunk) - s, d), dtype=np.float32)
        if plant_from is not None:
            for i in range(s + (-s) % every, min(n, s + chunk), every):
                j = (i // every) % plant_from.shape[0]
                x[i - s] = np.asarray(plant_from[j]) + 0.02 * x[i - s]        # cos ~ 0.9 with caption j
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:s + len(x)] = x
    out.flush(); del out


def matmul_rate(d, rows, cols, device, repeats=3):
    "Best-of-`repeats` float32 GFLOP/s of a (rows x d) @ (d x cols) product, the shape of one search block."
    a, b = torch.randn(rows, d, device=device), torch.randn(cols, d, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    (a @ b.T); sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter(); (a @ b.T); sync(); best = min(best, time.perf_counter() - t0)
    return 2 * rows * cols * d / best / 1e9


def child(args):
    "Run one search in this process and print its numbers as JSON."
    from clapbook.curation import chunked_search
    q = np.load(args.queries, mmap_mode="r"); k = np.load(args.keys, mmap_mode="r")
    rate = matmul_rate(q.shape[1], args.query_chunk, args.key_chunk, args.device)    # this process, just before
    t0 = time.perf_counter()
    r = chunked_search(q, k, k=args.k, threshold=args.threshold, query_chunk=args.query_chunk, key_chunk=args.key_chunk,
                       device=args.device)
    if args.device.startswith("cuda"): torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    planted = np.arange(0, q.shape[0], 1000)
    hit = float(np.mean(r["index"][planted, 0] == (planted // 1000) % k.shape[0]))
    print(json.dumps({"pool": q.shape[0], "captions": k.shape[0], "wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "pairs_over_threshold": int(len(r["pairs"])), "planted_found_top1": hit,
                      "gflops": 2 * q.shape[0] * k.shape[0] * q.shape[1] / wall / 1e9, "matmul_gflops": rate}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pools", type=int, nargs="+", default=[2000, 4000, 8000, 16000], help="pool sizes (clips) to sweep")
    ap.add_argument("--captions", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--query-chunk", type=int, default=4096)
    ap.add_argument("--key-chunk", type=int, default=16384)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dir", default=None, help="where to write the .npy files (default: a temporary folder, removed after)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--queries", help=argparse.SUPPRESS); ap.add_argument("--keys", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child: return child(args)

    work = Path(args.dir or tempfile.mkdtemp(prefix="curation-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    need = (max(args.pools) + args.captions) * args.dim * 4
    free = shutil.disk_usage(work).free
    print(f"disk: {need / 2**30:.2f} GiB needed, {free / 2**30:.1f} GiB free in {work}")
    if need > 0.9 * free: sys.exit(f"not enough free disk in {work} for {max(args.pools)} clips x {args.dim} floats")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {os.cpu_count()} CPUs")
    t0 = time.perf_counter()
    keys = work / f"captions-{args.captions}.npy"
    if not keys.exists(): write_unit_vectors(keys, args.captions, args.dim, seed=1)
    kmap = np.load(keys, mmap_mode="r")
    print(f"wrote {args.captions} caption vectors in {time.perf_counter() - t0:.1f} s")
    rate0 = matmul_rate(args.dim, args.query_chunk, args.key_chunk, args.device)
    print(f"matmul rate (float32, {args.query_chunk} x {args.dim} @ {args.dim} x {args.key_chunk}): {rate0:.1f} GFLOP/s")
    rows = []
    for n in args.pools:
        q = work / f"pool-{n}.npy"
        if not q.exists(): write_unit_vectors(q, n, args.dim, seed=2, plant_from=kmap)
        cmd = [sys.executable, __file__, "--child", "--queries", str(q), "--keys", str(keys), "--k", str(args.k),
               "--threshold", str(args.threshold), "--query-chunk", str(args.query_chunk), "--key-chunk", str(args.key_chunk),
               "--device", args.device]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        rows.append(r)
        r["ratio"] = r["gflops"] / r["matmul_gflops"]
        print(f"pool {n:>8}: {r['wall_s']:8.1f} s, {r['gflops']:6.1f} GFLOP/s ({r['ratio']:.2f} of the {r['matmul_gflops']:.1f} "
              f"GFLOP/s matmul measured just before), "
              f"peak RSS {r['peak_rss_mb']:.0f} MB, {r['pairs_over_threshold']} pairs >= {args.threshold}, "
              f"planted found at top-1: {r['planted_found_top1']:.2f}")
        if not args.dir: q.unlink()
    rate1 = matmul_rate(args.dim, args.query_chunk, args.key_chunk, args.device)
    print(f"matmul rate again at the end: {rate1:.1f} GFLOP/s")
    n = np.array([r["pool"] for r in rows], float); w = np.array([r["wall_s"] for r in rows])
    summary = {"rows": rows, "matmul_gflops": [rate0, rate1], "captions": args.captions, "dim": args.dim, "k": args.k,
               "threads": torch.get_num_threads(), "device": args.device, "torch": torch.__version__}
    if len(rows) >= 2:
        fixed, per_clip = np.polyfit(n, w, 1)[::-1]              # wall = fixed + per_clip * pool (a straight line)
        b = float(np.log(w[-1] / w[-2]) / np.log(n[-1] / n[-2]))  # local growth exponent between the two largest pools
        full = float(fixed + per_clip * 1e6)
        summary.update(fixed_s=float(fixed), seconds_per_clip=float(per_clip), growth_exponent=b, extrapolated_full_s=full)
        print(f"wall time = {fixed:.1f} s + {1000 * per_clip:.1f} ms per clip (least squares); it grows as pool^{b:.2f} between "
              f"the two largest pools. EXTRAPOLATED (not run): 1,000,000 clips x {args.captions} captions would take "
              f"{full / 3600:.1f} h on this machine at this rate")
    last = rows[-1]
    summary["ratio_at_largest_pool"] = last["ratio"]
    print(f"at the largest pool the search runs at {last['ratio']:.2f} of the matmul rate (target >= 0.5); "
          f"peak RSS max {max(r['peak_rss_mb'] for r in rows):.0f} MB (target < 2048)")
    if args.json: Path(args.json).write_text(json.dumps(summary, indent=1))
    if not args.dir: shutil.rmtree(work)


if __name__ == "__main__":
    main()
