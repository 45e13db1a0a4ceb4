"""Paper 3 (T-CLAP) in miniature: a baseline CLAP, the same fine-tuned with L_c only, and T-CLAP
(L_c + 0.5 L_t on temporal triplets mixed in at 1:4), for CNN14 ("tiny") and HTS-AT ("htsat-minilm": the same frozen MiniLM text tower)
audio encoders, several seeds; T-Classify, retrieval R@1 and zero-shot accuracy.

    OMP_NUM_THREADS=2 python experiments/temporal.py                 # 2-core CPU, tiny size, seeds 0 1 2
                                                                     # (what wrote experiments/results/temporal.md)
    python experiments/temporal.py --size full --device cuda         # a GPU

Parts can also run side by side and be merged (the header of the merged table lists the parts):

    OMP_NUM_THREADS=1 python experiments/temporal.py --presets tiny --out /tmp/t-cnn14 &
    OMP_NUM_THREADS=1 python experiments/temporal.py --presets htsat-minilm --out /tmp/t-htsat &
    wait; python experiments/temporal.py --merge /tmp/t-cnn14 /tmp/t-htsat

Writes <out>/temporal.json and <out>/temporal.md (see chapter 09, `clapbook.temporal.reproduce_temporal`).
"""
import argparse
import os
import sys

from clapbook.temporal import RUN_SIZES, merge_temporal_results, reproduce_temporal


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="experiments/results", help="folder for temporal.json and temporal.md")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", default="tiny", choices=list(RUN_SIZES))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=None, help="override pretraining and fine-tuning steps")
    ap.add_argument("--presets", nargs="+", default=["tiny", "htsat-minilm"])
    ap.add_argument("--lam", type=float, default=0.5, help="weight of the temporal loss, eq. (2)")
    ap.add_argument("--pairs-per-triplet", type=int, default=4)
    ap.add_argument("--merge", nargs="+", metavar="DIR", help="only merge the temporal.json of these folders into --out")
    args = ap.parse_args(argv)
    if args.merge:
        merge_temporal_results(args.merge, args.out)
        print(open(os.path.join(args.out, "temporal.md")).read()); return
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS",) if k in os.environ)
    command = " ".join(filter(None, [env, "python", "experiments/temporal.py", *(argv if argv is not None else sys.argv[1:])]))
    out = reproduce_temporal(out_dir=args.out, seeds=tuple(args.seeds), size=args.size, device=args.device, steps=args.steps,
                             presets=tuple(args.presets), lam=args.lam, pairs_per_triplet=args.pairs_per_triplet,
                             progress=True, command=command)
    print(open(os.path.join(args.out, "temporal.md")).read())
    print(f"wall time {out['wall_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
