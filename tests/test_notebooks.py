"""Run every chapter notebook (and index.ipynb) through nbdev's test runner.

Each notebook runs in its own subprocess (fresh interpreter, as `nbdev-test` would), from
its own folder, with IN_TEST=1, skipping the `#| slow` and `#| cuda` cells named by
`tst_flags` in pyproject.toml. The experiment notebooks (nbs/experiments/) are not run here: their
cells run each experiment at `--size test`, which tests/test_experiments.py already does (with the
results contract and merging), and CI's time is better spent once.
"""
import os, subprocess, sys, tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [ROOT / "index.ipynb", *sorted((ROOT / "nbs").glob("*.ipynb"))]
FLAGS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["nbdev"]["tst_flags"].split()

RUNNER = """
import sys
from nbdev.test import test_nb as run_nb
ok, secs = run_nb(sys.argv[1], skip_flags=sys.argv[2].split(), cell_timeout=900)
print(f"{sys.argv[1]}: {'ok' if ok else 'FAILED'} in {secs:.1f} s")
sys.exit(0 if ok else 1)
"""

@pytest.mark.parametrize("nb", [p for p in NOTEBOOKS if p.exists()], ids=lambda p: p.name)
def test_notebook_runs(nb):
    env = {**os.environ, "IN_TEST": "1", "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, "-c", RUNNER, str(nb), " ".join(FLAGS)], cwd=nb.parent,
                       env=env, capture_output=True, text=True, timeout=1800)
    print(r.stdout[-2000:])
    assert r.returncode == 0, f"{nb.name} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
