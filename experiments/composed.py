"""Paper 4's Table 1 in miniature: audio-composed text features vs fine-tuning (chapter 11, `clapbook.composed`).

    python experiments/composed.py                          # tiny, 3 seeds, CPU (about 20-30 min on 2 cores)
    python experiments/composed.py --size small --device cuda
"""
import argparse
import shlex
import sys

from clapbook.composed import COMPOSED_SIZES, reproduce_composed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="experiments/results", help="folder for composed.json and composed.md")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", default="tiny", choices=list(COMPOSED_SIZES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps per training run (default: the size's epochs)")
    p.add_argument("--target", default="soundworld", help="the corpus with captions")
    p.add_argument("--others", nargs="+", default=["instruments", "scenes"], help="corpora used as unlabeled audio")
    p.add_argument("--preset", default=None, help="a CLAP_PRESETS name (default: the size's, 'tiny')")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    command = "python experiments/composed.py " + " ".join(shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv))
    r = reproduce_composed(out_dir=a.out, seeds=tuple(a.seeds), size=a.size, device=a.device, steps=a.steps,
                           target=a.target, others=tuple(a.others), preset=a.preset, progress=not a.quiet,
                           command=command.strip())
    print(open(f"{a.out}/composed.md").read())
    return r


if __name__ == "__main__":
    main()
