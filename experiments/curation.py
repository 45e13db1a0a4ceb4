"""Paper 2 in miniature: a teacher CLAP curates pairs (DU, DS, ADS); students with soft labels and replay.

Writes experiments/results/curation.{json,md}: Table 1's analogue (pairs curated), Table 2's (zero-shot
accuracy of the teacher and the SL, DU, DU+SL, DS, DS+SL, ADS, ADS+SL students, mean +- std over seeds)
and Table 3's (a teacher trained on 10% of the pairs, and its DU, ADS, ADS+SL students).

    OMP_NUM_THREADS=1 nice -n 5 python experiments/curation.py                 # tiny, 3 seeds, CPU
    python experiments/curation.py --size base --device cuda                   # bigger data, a GPU
    python experiments/curation.py --merge A/curation.json B/curation.json     # seeds run side by side
"""
import argparse
import shlex
import sys

from clapbook.curation import CURATION_SIZES, merge_curation_results, reproduce_curation


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/results", help="folder for curation.json and curation.md")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    p.add_argument("--size", default="tiny", choices=list(CURATION_SIZES), help="data and step counts (default tiny)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--steps", type=int, default=None, help="teacher steps (students get a tenth); default from --size")
    p.add_argument("--work", default=None, help="folder for the generated data and embeddings (default OUT/.curation-work)")
    p.add_argument("--no-table3", action="store_true", help="skip the 10%%-pairs teacher of Table 3")
    p.add_argument("--merge", nargs="+", default=None, help="merge these curation.json files (runs on other seeds) into --out")
    args = p.parse_args(argv)
    if args.merge:
        res = merge_curation_results(args.merge, args.out)
        print(open(f"{args.out}/curation.md").read())
        return
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0]] + list(argv if argv is not None else sys.argv[1:]))
    res = reproduce_curation(out_dir=args.out, seeds=tuple(args.seeds), size=args.size, device=args.device, steps=args.steps,
                             work_dir=args.work, table3=not args.no_table3, command=command)
    print(open(f"{args.out}/curation.md").read())
    print(f"wall time {res['wall_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
