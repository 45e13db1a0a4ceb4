"""Replay the catalogue of student attempts against the lab checks and count what they got.

    python labs/instructor/replay.py            # every attempt in wrong_answers.py and valid_answers.py
    python labs/instructor/replay.py --verbose  # and each false accept, false refusal and crash with its message

A wrong answer that gets a ✓ is a false accept; a right answer that does not is a false refusal; a check
that raises instead of answering is a crash. The checks come from whichever `clapbook` is imported first
(put another checkout first on PYTHONPATH to replay an older version of them).
"""
import argparse, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def replay(attempts, right: bool, verbose: bool = False) -> dict:
    "Run each (check name, function) through its check; counts of {'ok', 'false', 'crash'} and the missing checks."
    from clapbook import labs
    counts = {"ok": 0, "false": 0, "crash": 0, "no check": 0}
    for check, fn, *phrase in attempts:
        if not hasattr(labs, check): counts["no check"] += 1; continue
        try: r = getattr(labs, check)(fn)
        except Exception as e:
            counts["crash"] += 1
            if verbose: print(f"  crash   {check}({fn.__name__}): {type(e).__name__}: {e}"[:300])
            continue
        good = r.passed if right else not r.passed
        counts["ok" if good else "false"] += 1
        if verbose and not good: print(f"  {'refused' if right else 'accepted'} {check}({fn.__name__}): {r.message}"[:300])
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    import clapbook, wrong_answers, valid_answers
    print(f"checks from {Path(clapbook.__file__).parent}")
    w = replay(wrong_answers.WRONG, right=False, verbose=args.verbose)
    v = replay(valid_answers.VALID, right=True, verbose=args.verbose)
    print(f"wrong answers: {len(wrong_answers.WRONG)}, false accepts {w['false']}, crashes {w['crash']}, checks missing {w['no check']}")
    print(f"right answers: {len(valid_answers.VALID)}, false refusals {v['false']}, crashes {v['crash']}, checks missing {v['no check']}")


if __name__ == "__main__":
    main()
