"""The widgets, driven headlessly: set a control, assert on the figure's data (no kernel, no browser)."""
import math

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")
import datasets

from clapbook.audio import audio_to_bytes, load_audio
from clapbook.losses import clap_loss
from clapbook.model import CLAP, CLAP_PRESETS
from clapbook.sounds import soundworld
from clapbook.widgets import (EmbeddingExplorer, SimilarityMatrix, TemporalProbe, ZeroShotDemo, demo_notebook,
                              embed_dataset, joint_layout, nearest, parse_labels, project_2d, similarity_view)

datasets.disable_progress_bars()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CLAP(CLAP_PRESETS["tiny"]).eval()


@pytest.fixture(scope="module")
def clips():
    return soundworld(n=96, seed=3)["test"]


@pytest.fixture(scope="module")
def emb(model, clips):
    return embed_dataset(model, clips)


def test_embed_dataset_batch_independent(model, clips, emb):
    part = embed_dataset(model, clips.select([4, 2]), batch_size=1)
    np.testing.assert_allclose(part["audio"], emb["audio"][[4, 2]], atol=1e-5)
    assert emb["labels"] == list(clips["label"]) and emb["captions"] == list(clips["caption"])
    with pytest.raises(ValueError, match="no column"):
        embed_dataset(model, clips, audio_column="wav")


def test_project_2d_pca_axes_and_determinism():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)) * np.array([5, 2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    p = project_2d(x)
    assert p.shape == (50, 2) and p[:, 0].var() > p[:, 1].var() > 0
    np.testing.assert_array_equal(project_2d(x), p)
    np.testing.assert_allclose(project_2d(-x), -p, atol=1e-4)      # fixed axis signs: mirrored data, mirrored map
    a, t = joint_layout(x[:20], x[20:40])
    assert a.shape == (20, 2) and t.shape == (20, 2)
    with pytest.raises(ValueError, match="N >= 3"):
        project_2d(x[:2])


def test_project_2d_umap_deterministic():
    pytest.importorskip("umap")
    x = np.random.default_rng(1).normal(size=(40, 6))
    np.testing.assert_allclose(project_2d(x, "umap", n_neighbors=5, seed=0), project_2d(x, "umap", n_neighbors=5, seed=0))


def test_nearest():
    bank = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0]])
    assert [i for i, _ in nearest([1.0, 0], bank, k=3)] == [0, 1, 2]
    assert nearest([1.0, 0], bank, k=1, exclude=0)[0][0] == 1
    with pytest.raises(ValueError, match="bank must have shape"):
        nearest([1.0, 0, 0], bank)


def test_similarity_view_matches_loss_and_softmax():
    g = torch.Generator().manual_seed(0)
    a, t = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    v = similarity_view(a, t, 20.0, "text→audio")
    np.testing.assert_allclose(v["z"].sum(0), np.ones(6), atol=1e-5)
    assert math.isclose(v["loss"], clap_loss(a, t, 20.0).item(), rel_tol=1e-6)
    cos = similarity_view(a, t, 20.0, "cosine")["z"]
    np.testing.assert_allclose(cos, similarity_view(a, t, 2.0, "cosine")["z"])
    with pytest.raises(ValueError, match="positive"):
        similarity_view(a, t, 0.0)


def test_parse_labels():
    assert parse_labels("a, b,,a\nc") == ["a", "b", "c"]
    with pytest.raises(ValueError, match="at least one label"):
        parse_labels("  ")


def test_explorer_controls_update_figure(model, clips, emb):
    ex = EmbeddingExplorer(model, clips, method="pca")
    assert len(ex.fig.data[1].x) == len(clips)
    colours = list(ex.fig.data[1].marker.color)
    assert len(set(colours)) == len(set(clips["label"]))               # one colour per class
    ex.color_by.value = "modality"
    assert ex.fig.data[1].marker.color == "#1f77b4"
    assert ex.fig._widget_data[1]["marker"]["color"] == "#1f77b4"      # a view created now starts from this state
    ex.lines.value = False
    assert len(ex.fig.data[0].x) == 0
    x_pca = np.array(ex.fig.data[1].x)
    ex.method.value = "umap"
    assert not np.allclose(np.array(ex.fig.data[1].x), x_pca)
    n_layouts = len(ex._layouts)
    ex.method.value = "pca"; ex.method.value = "umap"
    assert len(ex._layouts) == n_layouts                               # cached: no refit
    ex.n_neighbors.value = 5
    assert len(ex._layouts) == n_layouts + 1
    out = ex.select(2)
    assert out["clips"][0][0] != 2 and "clip 2" in ex.info.value and len(ex.player.value) > 1000
    with pytest.raises(IndexError):
        ex.select(10_000)


def test_explorer_from_precomputed_embeddings(emb):
    ex = EmbeddingExplorer(embeddings=emb)
    assert ex.select(0)["captions"]                                      # works without a model (no audio to play)
    with pytest.raises(ValueError, match="pass a model and a dataset"):
        EmbeddingExplorer()


def test_similarity_matrix_controls(model, clips):
    sm = SimilarityMatrix(model, clips, n=8)
    cos = np.array(sm.fig.data[0].z)
    sm.mode.value = "audio→text"
    np.testing.assert_allclose(np.array(sm.fig.data[0].z).sum(1), np.ones(8), atol=1e-5)
    loss_a = sm.update()["loss"]
    sm.scale.value = 50.0
    assert sm.update()["loss"] != loss_a and "50.0" in sm.fig.layout.title.text
    sm.mode.value = "cosine"
    np.testing.assert_allclose(np.array(sm.fig.data[0].z), cos, atol=1e-6)
    with pytest.raises(ValueError, match="matching pairs"):
        SimilarityMatrix(audio_emb=np.zeros((3, 4)), text_emb=np.zeros((2, 4)))


def test_temporal_probe_controls(model):
    tp = TemporalProbe({"a": model, "b": model}, a="bell", b="siren")
    assert len(tp.fig.data) == 2
    r = tp.results["a"]
    assert np.asarray(r["similarity"]).shape == (2, 2)
    np.testing.assert_allclose(np.array(tp.fig.data[0].z), np.array(tp.fig.data[1].z))   # same model twice
    z0 = np.array(tp.fig.data[0].z)
    tp.b.value = "rain"
    assert not np.allclose(np.array(tp.fig.data[0].z), z0)
    assert any("rain" in c for c in tp.results["a"]["captions"])
    tp.a.value = "rain"
    assert "two different" in tp.verdict.value


def test_zero_shot_demo(model, clips):
    demo = ZeroShotDemo(model, clips, labels=["bell", "siren", "rain"])
    assert sorted(demo.fig.data[0].y) == ["bell", "rain", "siren"]
    np.testing.assert_allclose(sum(demo.fig.data[0].x), 1.0, atol=1e-5)
    demo.labels.value = "wind, thunder"
    assert sorted(demo.fig.data[0].y) == ["thunder", "wind"]
    demo.clip.value = 3
    assert demo.fig.layout.title.text.startswith("dataset 3")
    wav = audio_to_bytes(load_audio(clips[1]["audio"], 16000), 16000)
    demo._on_upload([{"name": "up.wav", "content": memoryview(wav)}])    # what ipywidgets' FileUpload hands over
    assert demo.fig.layout.title.text.startswith("upload up.wav")
    before = list(demo.fig.data[0].x)
    assert demo.classify_file("broken.wav", b"RIFF\x00\x00") is None
    assert "broken.wav" in demo.status.value and list(demo.fig.data[0].x) == before


def test_demo_notebook_runs_in_a_kernel(model, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    import nbformat
    model.save_pretrained(tmp_path / "model")
    path = demo_notebook(tmp_path / "model", tmp_path / "demo.ipynb", n_clips=48)
    nb = nbformat.read(str(path), as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs) == 2
