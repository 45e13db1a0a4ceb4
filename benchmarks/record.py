"""Write a benchmark's numbers to `benchmarks/results/NAME.json`, with where they came from.

    from record import save_results
    save_results("frontend", {"rows": rows})      # -> benchmarks/results/frontend.json

The header records what produced the numbers: the exact command (with OMP_NUM_THREADS when it is
set), the git commit of the code and whether tracked files differed from it, the date, the machine
(CPU model, cores, torch threads, the load average when it finished) and the torch version. README.md's "Measured" section is rendered
from these files by a cell of index.ipynb; commit a file after running its benchmark.
"""
import datetime, json, os, platform, subprocess, sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def git_state() -> dict:
    "The HEAD commit and whether tracked files differ from it (None when this is not a git checkout)."
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    try: return {"git_commit": git("rev-parse", "HEAD") or None, "git_dirty": bool(git("status", "--porcelain", "-uno"))}
    except OSError: return {"git_commit": None, "git_dirty": None}


def machine() -> dict:
    "What the timings depend on: CPU model and its bfloat16 units, logical CPUs, torch threads, torch and Python versions."
    cpu, flags = platform.processor(), set()
    try:
        info = open("/proc/cpuinfo").read().splitlines()
        cpu = next(l.split(":", 1)[1].strip() for l in info if l.startswith("model name"))
        flags = set(next(l.split(":", 1)[1] for l in info if l.startswith("flags")).split())
    except (OSError, StopIteration): pass
    return {"cpu": cpu, "bf16_units": sorted(flags & {"avx512_bf16", "amx_bf16"}), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def command(argv=None) -> str:
    "The command line that ran this process (with `argv` as its arguments if given), as a reader would retype it from the repository root."
    script = Path(sys.argv[0]).resolve()
    try: script = script.relative_to(ROOT)
    except ValueError: pass
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS",) if k in os.environ)
    return " ".join(filter(None, [env, "python", str(script), *(sys.argv[1:] if argv is None else argv)]))


def header(argv=None) -> dict:
    "Where numbers come from, taken now: the command, the git state, the date and the machine (take it when a long run starts)."
    return {"command": command(argv), **git_state(), "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine()}


def save_results(name: str, results: dict, path=None) -> Path:
    "Write `results` under a provenance header to benchmarks/results/NAME.json (or `path`) and return the path."
    path = Path(path) if path else RESULTS / f"{name}.json"
    record = {"benchmark": name, **header(), **results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")
    return path
