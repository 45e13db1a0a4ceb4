"""The release: one version, a changelog entry for it, a one-line help for every command, and the
wheel check that `.ci/run` applies to the built wheel (which installs it in a fresh venv)."""
import importlib.util, re, sys, tomllib, zipfile
from pathlib import Path

import pytest

import clapbook
from clapbook.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_version_lives_in_one_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "clapbook.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", clapbook.__version__), clapbook.__version__


def test_changelog_has_the_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(clapbook.__version__)}\b", text, re.M), "add a CHANGELOG.md entry for " + clapbook.__version__


def test_every_command_has_a_one_line_description(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert set(helps) == set(sub.choices), f"commands without help: {set(sub.choices) - set(helps)}"
    for name, h in helps.items():
        assert h and "\n" not in h and len(h) < 160, (name, h)
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name, h in helps.items():
        assert name in out and " ".join(h.split()) in out, name


def _check_wheel():
    spec = importlib.util.spec_from_file_location("check_wheel", ROOT / "tools" / "check_wheel.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod.check


def _fake_wheel(path: Path, extra=()) -> Path:
    v = clapbook.__version__
    wheel = path / f"clapbook-{v}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for p in (ROOT / "clapbook").glob("*.py"): z.writestr(f"clapbook/{p.name}", "")
        for n in ("METADATA", "WHEEL", "RECORD", "entry_points.txt"): z.writestr(f"clapbook-{v}.dist-info/{n}", "")
        for n in extra: z.writestr(n, "")
    return wheel


def test_wheel_check_accepts_the_package_only(tmp_path):
    check = _check_wheel()
    assert check(_fake_wheel(tmp_path)) == []
    (tmp_path / "b").mkdir()
    problems = check(_fake_wheel(tmp_path / "b", ["nbs/01_audio.ipynb", "tests/test_audio.py"]))
    assert any("outside the package" in p for p in problems) and any(".ipynb" in p for p in problems)
