"Tests for clapbook.benchmark (chapter 13): every task's metric on constructed inputs with known answers."
import math

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Sequence, Value

from clapbook.benchmark import (COUNT_WORDS, LookupModel, Task, benchmark, embedded_tasks, evaluate_task,
                                loudness_label, oracle_model, register_label, task_from)

E = torch.eye


def clips(paths, **cols):
    return Dataset.from_dict({"audio": [{"path": p} for p in paths], **cols})


def word_model(audio_axis: dict, classes: list):
    "Clips sit on the axis given by `audio_axis[path]`; a prompt sits on the axis of the class it ends with."
    return LookupModel(lambda a: E(len(classes))[audio_axis[a["path"]]],
                       lambda t: E(len(classes))[next(i for i, c in enumerate(classes) if t.endswith(c))])


# ---- hand-computed metrics -------------------------------------------------------------------------
def test_task_checks_kind_columns_rows():
    d = clips(["a.wav"], label=["dog"])
    with pytest.raises(ValueError, match="kind='regression'"): Task("t", kind="regression", data=d)
    with pytest.raises(ValueError, match="no column 'category'"): Task("t", data=d, label_column="category")
    with pytest.raises(ValueError, match="rows is empty"): Task("t", data=d, rows=[])
    with pytest.raises(ValueError, match="distinct"): Task("t", data=d, labels=["dog", "dog"])


def test_accuracy_by_hand_and_template():
    classes = ["dog", "cat", "cow"]
    d = clips(["1.wav", "2.wav", "3.wav", "4.wav"], label=["dog", "cat", "cow", "cow"])
    m = word_model({"1.wav": 0, "2.wav": 1, "3.wav": 2, "4.wav": 1}, classes)        # 3 of 4 right
    r = evaluate_task(m, Task("a", data=d, labels=classes))[0]
    assert r["metric"] == "accuracy" and r["value"] == pytest.approx(0.75) and r["chance"] == pytest.approx(1 / 3)
    assert (r["clips"], r["classes"]) == (4, 3)
    r = evaluate_task(m, Task("a", data=d, labels=classes, rows=[0, 1, 2]))[0]        # the wrong clip left out
    assert r["value"] == 1.0 and r["clips"] == 3
    with pytest.raises(ValueError, match="'horse'"):
        evaluate_task(m, Task("a", data=clips(["1.wav"], label=["horse"]), labels=classes))


def test_multilabel_map_by_hand():
    classes = ["dog", "cat", "cow"]
    d = clips(["1.wav", "2.wav", "3.wav"], label=[["dog"], ["cat", "cow"], ["cow"]])
    # scores per class (cosines): dog [1,0,0]; cat [0,1,0]; cow [0,0,1] after the clip vectors below
    m = LookupModel(lambda a: {"1.wav": E(3)[0], "2.wav": E(3)[1], "3.wav": E(3)[2]}[a["path"]],
                    lambda t: E(3)[classes.index(t.split()[-1])], logit_scale=10.0)
    r = evaluate_task(m, Task("m", kind="multilabel", data=d, labels=classes))[0]
    # dog: AP 1; cat: AP 1; cow: positives 2.wav (score 0, tied with 1.wav) and 3.wav (top):
    # threshold 1 -> P 1, R 1/2; threshold 0 (3 clips, 2 positive) -> P 2/3, R 1: AP = 1/2 * 1 + 1/2 * 2/3
    assert r["value"] == pytest.approx((1 + 1 + (0.5 + 0.5 * 2 / 3)) / 3)
    assert r["chance"] == pytest.approx((1 / 3 + 1 / 3 + 2 / 3) / 3)


def test_multilabel_with_classlabel_sequence():
    feats = Features({"audio": {"path": Value("string")}, "tags": Sequence(ClassLabel(names=["dog", "cat"]))})
    d = Dataset.from_dict({"audio": [{"path": "1.wav"}, {"path": "2.wav"}], "tags": [[0], [1]]}, features=feats)
    m = word_model({"1.wav": 0, "2.wav": 1}, ["dog", "cat"])
    assert evaluate_task(m, Task("m", kind="multilabel", data=d, label_column="tags"))[0]["value"] == 1.0


def test_retrieval_by_hand():
    # three clips, one caption each; caption 1 is closest to clip 2, so T->A R@1 = 2/3;
    # clip 2 ranks caption 1 first and its own caption second: A->T R@1 = 2/3, AP = 1/2.
    d = clips(["0.wav", "1.wav", "2.wav"], caption=["c0", "c1", "c2"])
    a = {"0.wav": [1.0, 0, 0], "1.wav": [0, 1.0, 0], "2.wav": [0, 0.8, 0.6]}
    t = {"c0": [1.0, 0, 0], "c1": [0, 0.9, 0.1], "c2": [0, 0.6, 0.8]}
    m = LookupModel(lambda x: torch.tensor(a[x["path"]]), lambda s: torch.tensor(t[s]))
    rows = {r["metric"]: r["value"] for r in evaluate_task(m, Task("r", kind="retrieval", data=d, label_column="caption"))}
    # cosines: c1 vs clips: [0, .994, .857] -> clip 1 first: right. c2 vs clips: [0, .6, .96] -> clip 2: right.
    # clip 2 vs captions: c1 .857*? compute: clip2=(0,.8,.6); c1=(0,.9,.1)/|.906|: (.72+.06)/.906=.861; c2: (.48+.48)=.96 -> own first
    sim = torch.nn.functional.normalize(torch.tensor([a[k] for k in ["0.wav", "1.wav", "2.wav"]]), dim=-1) @ \
          torch.nn.functional.normalize(torch.tensor([t[k] for k in ["c0", "c1", "c2"]]), dim=-1).T
    t2a = (sim.argmax(0) == torch.arange(3)).double().mean().item()
    a2t = (sim.argmax(1) == torch.arange(3)).double().mean().item()
    assert rows["T->A R@1"] == pytest.approx(t2a) and rows["A->T R@1"] == pytest.approx(a2t)
    assert rows["T->A R@1"] == 1.0          # the construction above: every caption's own clip is nearest
    # mAP@10 with one relevant item = mean of 1/rank
    ranks = (sim.T.argsort(dim=1, descending=True) == torch.arange(3)[:, None]).float().argmax(1) + 1
    assert rows["T->A mAP@10"] == pytest.approx((1 / ranks.double()).mean().item())


def test_retrieval_rank_two():
    d = clips(["0.wav", "1.wav"], caption=["c0", "c1"])
    a = {"0.wav": [1.0, 0.0], "1.wav": [1.0, 0.2]}           # both clips nearest to c0
    t = {"c0": [1.0, 0.0], "c1": [0.0, 1.0]}
    m = LookupModel(lambda x: torch.tensor(a[x["path"]]), lambda s: torch.tensor(t[s]))
    rows = {r["metric"]: r["value"] for r in evaluate_task(m, Task("r", kind="retrieval", data=d, label_column="caption"))}
    assert rows["A->T R@1"] == 0.5 and rows["A->T mAP@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert rows["T->A R@1"] == 1.0          # c0 -> clip 0 (cos 1), c1 -> clip 1 (the only one with a c1 component)


def test_t_classify_by_hand():
    w = [np.full(4, k, np.float32) for k in range(4)]        # clip0, reversed0, clip1, reversed1
    ex = [dict(audio=w[0], negative_audio=w[1], caption="a then b", negative_caption="b then a", sample_rate=16000),
          dict(audio=w[2], negative_audio=w[3], caption="c then d", negative_caption="d then c", sample_rate=16000)]
    # example 0 is right both ways; example 1: the clip sits on its negative caption -> wrong both ways
    axis = {0: 0, 1: 1, 2: 3, 3: 2}
    text = {"a then b": 0, "b then a": 1, "c then d": 2, "d then c": 3}
    m = LookupModel(lambda x: E(4)[axis[int(x[0])]], lambda s: E(4)[text[s]])
    rows = evaluate_task(m, Task("t", kind="t_classify", data=ex))
    assert [r["value"] for r in rows] == [0.5, 0.5] and [r["chance"] for r in rows] == [0.5, 0.5]


def test_register_and_loudness_rules():
    from clapbook.sounds import HIGH_NOTE, LOUD_DB, LOUD_VELOCITY, LOW_NOTE, SOFT_DB, SOFT_VELOCITY
    assert register_label(HIGH_NOTE) == "high-pitched" and register_label(LOW_NOTE) == "low-pitched"
    assert register_label(HIGH_NOTE - 1) is None
    assert loudness_label(SOFT_VELOCITY, SOFT_DB) == "soft" and loudness_label(LOUD_VELOCITY, LOUD_DB) == "loud"
    assert loudness_label(LOUD_VELOCITY, LOUD_DB - 1) is None and loudness_label(SOFT_VELOCITY + 1, SOFT_DB) is None


# ---- the embedded suite ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tasks():
    return embedded_tasks(n=240, seed=0)


def test_suite_has_the_task_kinds(tasks):
    names = [t.name for t in tasks]
    assert names == ["sound events", "counting", "instrument family", "instrument", "drum piece", "pitch register",
                     "loudness", "scene events", "retrieval", "temporal order"]
    by = {t.name: t for t in tasks}
    from clapbook.sounds import DRUMS, INSTRUMENTS
    assert {by["drum piece"].data["label"][i] for i in by["drum piece"].rows} <= set(DRUMS)
    assert {by["instrument"].data["label"][i] for i in by["instrument"].rows} <= set(INSTRUMENTS)
    assert {by["counting"].data["repeats"][i] for i in by["counting"].rows} <= set(COUNT_WORDS.values())
    assert all(len(t) > 0 for t in tasks)
    with pytest.raises(ValueError, match="unknown task names"): embedded_tasks(n=240, names=["esc50"])


def test_every_task_oracle_scores_one_and_known_fractions(tasks):
    for t in tasks:
        if t.kind == "retrieval":   # the oracle needs distinct captions
            caps = t.data["caption"]
            t = Task(t.name, kind="retrieval", data=t.data, label_column="caption",
                     rows=[i for i, c in enumerate(caps) if caps.count(c) == 1])
        rows = evaluate_task(oracle_model(t), t)
        assert all(r["value"] == pytest.approx(1.0) for r in rows), (t.name, rows)
        if t.kind in ("classify", "t_classify"):           # every 3rd row answered wrong
            wrong = math.ceil(len(t) / 3)
            rows = evaluate_task(oracle_model(t, wrong_every=3), t)
            assert all(r["value"] == pytest.approx(1 - wrong / len(t)) for r in rows), (t.name, rows)
        if t.kind == "multilabel":                         # every 2nd clip's classes shifted: mAP falls below 1
            assert evaluate_task(oracle_model(t, wrong_every=2), t)[0]["value"] < 1.0


def test_benchmark_table_and_score(tasks):
    sound = tasks[0]
    table, score = benchmark(oracle_model(sound, wrong_every=2), tasks=[sound])
    assert list(table.columns) == ["task", "metric", "value", "chance", "clips", "classes", "analog"]
    assert score == pytest.approx(1 - math.ceil(len(sound) / 2) / len(sound))
    with pytest.raises(ValueError, match="repeated"): benchmark(oracle_model(sound), tasks=[sound, sound])
    with pytest.raises(ValueError, match="no tasks"): benchmark(oracle_model(sound), tasks=[])


def test_task_from_folder_and_dataset(tmp_path, tasks):
    from clapbook.data import write_audiofolder
    sw = tasks[0].data.select(range(8)).select_columns(["audio", "label"])
    write_audiofolder(sw, tmp_path / "mine")
    t = task_from(tmp_path / "mine", name="mine", label_column="label", split="test")
    assert (t.name, len(t), t.kind) == ("mine", 8, "classify")
    with pytest.raises(ValueError, match="'category'"): task_from(tmp_path / "mine", label_column="category")
    # a datasets object with integer class labels and names
    ds = sw.cast_column("label", ClassLabel(names=sorted(set(sw["label"]))))
    t2 = task_from(ds, name="ints")
    paths = [a["path"] for a in ds["audio"]]
    names = ds.features["label"].names
    m = LookupModel(lambda a: E(len(names))[ds["label"][paths.index(a["path"])]],
                    lambda s: E(len(names))[next(i for i, c in enumerate(names) if s.endswith(c))])
    assert evaluate_task(m, t2)[0]["value"] == 1.0
    with pytest.raises(ValueError, match="no audio column 'sound'"): task_from(ds, audio_column="sound")
