"""Paper 1's Table 1 in miniature: CNN14 and HTS-AT audio encoders x GPT-2 (end-of-text pooling, from scratch),
BERT-style (CLS pooling, from scratch) and pretrained frozen all-MiniLM-L6-v2 text encoders, the same data and
steps for each, several seeds, scored with chapter 13's zero-shot suite.

    OMP_NUM_THREADS=1 python experiments/encoders.py                      # 2-core CPU, tiny size, seeds 0 1 2
    python experiments/encoders.py --size base --device cuda              # a GPU

Writes <out>/encoders.json and <out>/encoders.md after every run (see chapter 13,
`clapbook.benchmark.reproduce_encoders`); also `clapbook reproduce encoders`.
"""
import argparse
import os
import sys

from clapbook.benchmark import ENCODER_SIZES, encoder_configs, reproduce_encoders


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="experiments/results", help="folder for encoders.json and encoders.md")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", default="tiny", choices=list(ENCODER_SIZES))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=None, help="override the training steps of each pair")
    ap.add_argument("--combos", nargs="+", default=None, choices=list(encoder_configs()), help="encoder pairs (default all six)")
    args = ap.parse_args(argv)
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS",) if k in os.environ)
    command = " ".join(filter(None, [env, "python", "experiments/encoders.py", *(argv if argv is not None else sys.argv[1:])]))
    out = reproduce_encoders(out_dir=args.out, seeds=tuple(args.seeds), size=args.size, device=args.device, steps=args.steps,
                             combos=args.combos, progress=True, command=command)
    print(open(os.path.join(args.out, "encoders.md")).read())
    print(f"wall time {out['wall_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
