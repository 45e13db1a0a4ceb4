"""Paper 1's HTSAT-22 idea in miniature: the tiny preset's CNN14 audio encoder pretrained not at all, on
classification of the 51 SoundWorld + Instruments classes, or on many tasks at once as a captioner (audio
encoder -> mapper -> GPT-2 prefix, eq. 5), each then used as the audio tower of a tiny CLAP that trains on the
same pairs; all scored with chapter 13's zero-shot suite.

    OMP_NUM_THREADS=1 python experiments/pretraining.py                  # 2-core CPU, tiny size, seeds 0 1 2
    python experiments/pretraining.py --size base --device cuda          # a GPU

Writes <out>/pretraining.json and <out>/pretraining.md after every run (chapter 14,
`clapbook.pretraining.reproduce_pretraining`); also `clapbook reproduce pretraining`.
"""
import argparse
import os
import sys

from clapbook.pretraining import PRETRAIN_SIZES, reproduce_pretraining


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="experiments/results", help="folder for pretraining.json and pretraining.md")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", default="tiny", choices=list(PRETRAIN_SIZES))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=None, help="override pretraining and CLAP steps")
    args = ap.parse_args(argv)
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS",) if k in os.environ)
    command = " ".join(filter(None, [env, "python", "experiments/pretraining.py", *(argv if argv is not None else sys.argv[1:])]))
    out = reproduce_pretraining(out_dir=args.out, seeds=tuple(args.seeds), size=args.size, device=args.device,
                                steps=args.steps, progress=True, command=command)
    print(open(os.path.join(args.out, "pretraining.md")).read())
    print(f"wall time {out['wall_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
