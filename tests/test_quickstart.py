"""clapbook.quickstart: the report writer, the results table and the `clapbook quickstart` command.
(The quickstart itself runs end to end in nbs/19_quickstart.ipynb.)"""
import json

import pytest

import clapbook.cli as cli
from clapbook.quickstart import PROMPT_SETS, QUICKSTART_CORPORA, format_table, plot_history, quickstart_rows, write_report


def _metrics():
    "The parts of a quickstart metrics.json that the table and the command read."
    prompts = {t: {"chosen": "plain", "test_accuracy": {"default": 0.5, "plain": acc}} for t, acc in
               (("soundworld", 0.75), ("instruments", 0.25))}
    return {"zero_shot_accuracy": {"soundworld": 0.75, "instruments": 0.25}, "prompts": prompts,
            "chance": {"soundworld": 1 / 16, "instruments": 1 / 35}, "test_clips": {"soundworld": 48, "instruments": 70},
            "retrieval": {"text_to_audio/R@1": 0.125}, "steps": 12, "wall_seconds": 3.0,
            "stage_seconds": {"data": 1.0, "training (with validation)": 1.5, "evaluation": 0.5}}


def test_rows_keep_the_task_order_and_show_the_default_beside_the_choice():
    rows = quickstart_rows(_metrics())
    assert [r["task"] for r in rows] == ["soundworld", "instruments"]
    assert rows[1] == {"task": "instruments", "zero-shot accuracy": 0.25, "prompt set (chosen on valid)": "plain",
                       "with the default prompt": 0.5, "chance": 1 / 35, "test clips": 70}


def test_format_table_aligns_columns():
    assert format_table([]) == ""
    lines = format_table([{"task": "a", "acc": 0.5}, {"task": "longer", "acc": 0.123456}]).splitlines()
    assert lines == ["task      acc", "------  -----", "a       0.500", "longer  0.123"]


def test_report_escapes_text_skips_empty_tables_and_leaves_no_temporary_file(tmp_path):
    hist = [{"kind": "train", "step": 1, "loss": 2.0}, {"kind": "valid", "step": 1, "zero_shot": 0.5}]
    path = write_report(tmp_path / "out" / "r.html", "<b>run</b>", [plot_history(hist), plot_history(hist[:1])],
                        {"results <1>": [{"task": "a&b", "acc": 0.5}], "empty": []})
    text = path.read_text()
    assert "&lt;b&gt;run&lt;/b&gt;" in text and "results &lt;1&gt;" in text and "a&amp;b" in text and "0.5000" in text
    assert "<h2>empty</h2>" not in text
    assert text.count("<table>") == 1 and text.count("* plotly.js v") == 1    # plotly's JavaScript once, for two figures
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.html"]


def test_prompt_sets_start_with_the_default_template():
    assert list(PROMPT_SETS)[0] == "default" and PROMPT_SETS["default"] == ["this is a sound of {label}"]
    assert all("{label}" in t for tpls in PROMPT_SETS.values() for t in tpls)


def test_quickstart_command_passes_its_options_and_prints_the_table(monkeypatch, capsys, tmp_path):
    seen = {}
    monkeypatch.setattr(cli, "quickstart", lambda out, **kw: seen.update(out=out, **kw) or _metrics())
    cli.main(["quickstart", "--out", str(tmp_path), "--n", "64", "--epochs", "1", "--seed", "3", "--preset", "tiny-gpt2",
              "--workers", "2", "--data-dir", str(tmp_path / "data"), "--quiet"])
    assert seen == dict(out=str(tmp_path), seed=3, n=64, epochs=1, device="cpu", data_dir=str(tmp_path / "data"),
                        progress=False, preset="tiny-gpt2", workers=2, keep_data=False)
    out = capsys.readouterr().out
    assert "prompt set (chosen on valid)" in out and "soundworld" in out and "0.750" in out
    assert f"retrieval on {QUICKSTART_CORPORA[0]} test: text_to_audio/R@1 0.125" in out
    assert "12 steps in 3 s" in out
