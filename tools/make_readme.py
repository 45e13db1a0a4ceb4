"""Make README.md from index.ipynb (quarto, which `nbdev-readme` needs, is not available).

    python tools/make_readme.py          # write README.md
    python tools/make_readme.py --check  # fail if README.md is not what index.ipynb makes

Cells marked `#| hide` are dropped, `#|` directive lines are removed from the rest, and
outputs are kept as text (HTML-only outputs such as plotly figures are left out).
"""
import argparse, re, sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parents[1]


def readme_text() -> str:
    nb = nbformat.read(ROOT / "index.ipynb", as_version=4)
    cells = []
    for c in nb.cells:
        lines = c.source.splitlines()
        directives = [l for l in lines if l.startswith("#|")]
        if any(re.match(r"#\|\s*hide\b", d) for d in directives): continue
        c.source = "\n".join(l for l in lines if not l.startswith("#|")).strip("\n")
        if c.cell_type == "code":
            for o in c.get("outputs", []):
                if "data" in o: o["data"] = {k: v for k, v in o["data"].items() if k == "text/plain" or k == "text/markdown"}
            c["outputs"] = [o for o in c.get("outputs", []) if o.get("data", True)]
        cells.append(c)
    nb.cells = cells
    body, _ = MarkdownExporter(exclude_raw=True).from_notebook_node(nb)
    body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
    return "<!-- Made from index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n" + body


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text, path = readme_text(), ROOT / "README.md"
    if args.check:
        if not path.exists() or path.read_text() != text:
            sys.exit("README.md is out of date: run `python tools/make_readme.py` and commit it.")
        print("README.md is up to date with index.ipynb")
    else:
        path.write_text(text); print(f"wrote {path}")


if __name__ == "__main__":
    main()
