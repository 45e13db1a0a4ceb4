"""Check a built clapbook wheel: it holds the package (every module of clapbook/) and nothing else.

    python tools/check_wheel.py dist/clapbook-*.whl

Fails if a notebook, a test, a lab, the book's data or anything outside `clapbook/` and the
wheel's own metadata is inside, if a module of the checkout is missing, or if the wheel's
version is not `clapbook.__version__` of the checkout.
"""
import re, sys, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check(wheel: Path) -> list[str]:
    "Problems with `wheel`, as sentences (empty when it is good)."
    names = zipfile.ZipFile(wheel).namelist()
    version = re.search(r'^__version__\s*=\s*"([^"]+)"', (ROOT / "clapbook" / "__init__.py").read_text(), re.M).group(1)
    problems = []
    if f"-{version}-" not in wheel.name: problems.append(f"{wheel.name}: not version {version} (clapbook/__init__.py)")
    meta = f"clapbook-{version}.dist-info/"
    stray = [n for n in names if not (n.startswith("clapbook/") or n.startswith(meta))]
    if stray: problems.append(f"files outside the package: {stray[:10]}")
    for pattern in (".ipynb", "tests/", "test_", "labs/", "nbs/"):
        bad = [n for n in names if pattern in n]
        if bad: problems.append(f"{pattern!r} in the wheel: {bad[:10]}")
    modules = {f"clapbook/{p.name}" for p in (ROOT / "clapbook").glob("*.py")}
    missing = sorted(modules - set(names))
    if missing: problems.append(f"modules of the checkout missing from the wheel: {missing}")
    if f"{meta}entry_points.txt" not in names: problems.append("no entry_points.txt: the `clapbook` command would not be installed")
    return problems


if __name__ == "__main__":
    wheels = [Path(p) for p in sys.argv[1:]]
    if len(wheels) != 1: sys.exit(f"expected one wheel, got {len(wheels)}: {sys.argv[1:]}")
    problems = check(wheels[0])
    for p in problems: print("FAIL:", p)
    if problems: sys.exit(1)
    n = len(zipfile.ZipFile(wheels[0]).namelist())
    print(f"{wheels[0].name}: {n} files, the package and its metadata only")
