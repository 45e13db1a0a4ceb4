"""Make README.md from index.ipynb (quarto, which `nbdev-readme` needs, is not available).

    python tools/make_readme.py          # write README.md
    python tools/make_readme.py --check  # fail if README.md is not what index.ipynb makes

Cells marked `#| hide` are dropped, `#|` directive lines are removed from the rest, and
outputs are kept as text (HTML-only outputs such as plotly figures are left out). A code cell
marked `#| echo: false` is run here, from the repository root (it must be quick: it reads files,
such as the committed results behind the "Measured" section), and only its output goes into the
README: Markdown as Markdown, printed text as a code block. So the README always shows what the
committed files say, and `--check` fails when a results file changed and README.md did not.
"""
import argparse, os, re, sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parents[1]


def run_for_readme(source: str) -> str:
    "Run a notebook cell's code from the repository root; its Markdown and printed output, as Markdown."
    from execnb.shell import CaptureShell
    here = os.getcwd()
    try:
        os.chdir(ROOT)
        outputs = CaptureShell(mpl_format=None).run(source)
    finally: os.chdir(here)
    parts = []
    for o in outputs:
        if o["output_type"] == "error": sys.exit("make_readme: an `#| echo: false` cell of index.ipynb failed:\n" + "".join(o["traceback"]))
        if o["output_type"] == "stream" and o["name"] == "stdout": parts.append("```text\n" + "".join(o["text"]).strip("\n") + "\n```")
        elif "text/markdown" in o.get("data", {}): parts.append("".join(o["data"]["text/markdown"]).strip("\n"))
    return "\n\n".join(parts)


def readme_text() -> str:
    nb = nbformat.read(ROOT / "index.ipynb", as_version=4)
    cells = []
    for c in nb.cells:
        lines = c.source.splitlines()
        directives = [l for l in lines if l.startswith("#|")]
        if any(re.match(r"#\|\s*hide\b", d) for d in directives): continue
        c.source = "\n".join(l for l in lines if not l.startswith("#|")).strip("\n")
        if c.cell_type == "code" and any(re.match(r"#\|\s*echo:\s*false\b", d) for d in directives):
            c = nbformat.v4.new_markdown_cell(run_for_readme(c.source))
        elif c.cell_type == "code":
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
