"""Fill every lab with its solutions, run it from a fresh interpreter and print a table of wall times.

    python labs/instructor/run_labs.py                 # all labs at the size a student runs, one fresh interpreter each
    python labs/instructor/run_labs.py --test          # the shortened IN_TEST run the test suite uses
    python labs/instructor/run_labs.py --write answers # also keep the filled, executed notebooks (the answer key)
    python labs/instructor/run_labs.py --test --one-process --json labs/instructor/run_times.json   # record the times (chapter 18 reads them)

Failing checks raise (CLAPBOOK_LABS_STRICT=1), so a lab that does not pass its own checks fails here.
"""
import argparse, json, os, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABS = HERE.parent
RUNNER = """
import json, sys, time
t0 = time.perf_counter()
from fastcore.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
for path in sys.argv[1:]:
    t = time.perf_counter()
    nb = read_nb(path)
    CaptureShell().run_all(nb, exc_stop=True)
    write_nb(nb, path)
    print(json.dumps({"lab": path, "seconds": time.perf_counter() - (t0 if path == sys.argv[1] else t)}), flush=True)
"""


def _cpu_seconds() -> float:
    "User + system CPU seconds used so far by this process's finished children."
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_labs(labs, out_dir: Path, test: bool = False, one_process: bool = False, timeout: int = 1800, cpu: dict | None = None) -> dict:
    "Fill in each lab's solutions and execute it from `out_dir` (each in a fresh interpreter, or all in one); {lab name: wall seconds}, CPU seconds per interpreter into `cpu`."
    from clapbook.labs import fill_in_solutions
    env = {**os.environ, "CLAPBOOK_LABS_STRICT": "1", "PYTHONUNBUFFERED": "1"}
    if test: env["IN_TEST"] = "1"
    else: env.pop("IN_TEST", None)
    filled = []
    for lab in labs:
        filled.append(out_dir / Path(lab).name)
        fill_in_solutions(lab, HERE / "solutions.py", filled[-1])
    groups = [filled] if one_process else [[f] for f in filled]
    times = {}
    for group in groups:
        t, c = time.perf_counter(), _cpu_seconds()
        r = subprocess.run([sys.executable, "-c", RUNNER, *map(str, group)], cwd=out_dir, env=env,
                           capture_output=True, text=True, timeout=timeout)
        done = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        times.update({Path(d["lab"]).stem: d["seconds"] for d in done})
        if r.returncode != 0:
            failed = group[len(done)].name
            raise RuntimeError(f"{failed} failed ({time.perf_counter() - t:.1f} s into its run):\n{r.stderr[-6000:]}")
        if not one_process: times[group[0].stem] = time.perf_counter() - t      # the whole interpreter, start to exit
        if cpu is not None: cpu[group[0].stem if not one_process else "all"] = _cpu_seconds() - c
    return times


def machine() -> str:
    "The CPU model and count, for the record of the times."
    try: model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration): model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def record(path: Path, key: str, times: dict, cpu: dict):
    "Merge one run's times into the JSON record at `path`: `test` (seconds per lab) or `full` (wall and CPU seconds per lab)."
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(machine=machine(), threads=f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'default')}")
    data.setdefault("commands", {})[key] = "python labs/instructor/run_labs.py " + " ".join(sys.argv[1:])
    data[key] = ({k: round(v, 1) for k, v in times.items()} if key == "test" else
                 {k: {"wall_s": round(v, 1), "cpu_s": round(cpu.get(k, float("nan")), 1)} for k, v in times.items()})
    if "all" in cpu: data[f"{key}_cpu_s_one_interpreter"] = round(cpu["all"], 1)
    path.write_text(json.dumps(data, indent=1) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("labs", nargs="*", help="lab notebooks (default: all of labs/NN_*.ipynb)")
    ap.add_argument("--test", action="store_true", help="the shortened IN_TEST run")
    ap.add_argument("--one-process", action="store_true", help="run all labs in one interpreter (imports paid once)")
    ap.add_argument("--write", metavar="DIR", help="keep the filled, executed notebooks in DIR")
    ap.add_argument("--json", metavar="PATH", help="record the times in PATH (under 'test' with --test, else under 'full')")
    args = ap.parse_args()
    labs = [Path(p) for p in args.labs] or sorted(LABS.glob("[0-9]*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.write or tmp); out.mkdir(parents=True, exist_ok=True)
        print(f"{'IN_TEST' if args.test else 'full size'}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'default')}, {os.cpu_count()} CPUs")
        print("| lab | wall seconds | CPU seconds (user + system) |\n|---|---|---|")
        all_times, all_cpu = {}, {}
        for lab in labs if not args.one_process else []:
            cpu = {}
            times = run_labs([lab], out, args.test, cpu=cpu)
            all_times.update(times); all_cpu.update(cpu)
            print(f"| {lab.stem} | {times[lab.stem]:.1f} | {cpu[lab.stem]:.1f} |", flush=True)
        if args.one_process:
            cpu = {}
            all_times = run_labs(labs, out, args.test, one_process=True, cpu=cpu)
            for k, v in all_times.items(): print(f"| {k} | {v:.1f} | |")
            print(f"| all, one interpreter | | {cpu['all']:.1f} |")
        if args.json: record(Path(args.json), "test" if args.test else "full", all_times, all_cpu if not args.one_process else cpu)


if __name__ == "__main__":
    main()
