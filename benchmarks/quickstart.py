"""The quickstart, measured: run `clapbook quickstart` and keep its metrics.json as a results file.

    python benchmarks/quickstart.py                      # the README's command, in a temporary folder
    python benchmarks/quickstart.py -- --seed 1          # arguments after -- go to `clapbook quickstart`

`clapbook quickstart` builds the embedded corpora, trains the tiny CLAP, evaluates it and writes
metrics.json (zero-shot accuracy per corpus with the prompt set chosen on validation and with the
default prompt, retrieval, wall seconds per stage). This script runs it from an empty output folder
and writes benchmarks/results/quickstart.json: that metrics.json under a provenance header.
"""
import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path

from record import save_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-save", action="store_true", help="print only; do not write benchmarks/results/quickstart.json")
    ap.add_argument("extra", nargs="*", help="more arguments for `clapbook quickstart` (after --)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["clapbook", "quickstart", "--out", str(Path(tmp) / "quickstart"), *args.extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t0
        metrics = json.loads((Path(tmp) / "quickstart" / "metrics.json").read_text())
    print(f"clapbook quickstart: {wall:.0f} s; zero-shot accuracy {metrics['zero_shot_accuracy']}")
    if not args.no_save:
        save_results("quickstart", {"quickstart_command": " ".join(["clapbook", "quickstart", *args.extra]),
                                    "process_wall_seconds": wall, "metrics": metrics})


if __name__ == "__main__":
    main()
