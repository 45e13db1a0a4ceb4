"""Tests for clapbook.losses beyond chapter 6's specification (the hand example lives in the chapter):
an independent NumPy reference, invariances, precision and error messages."""
import math

import numpy as np
import pytest
import torch

from clapbook.losses import clap_loss, contrastive_accuracy, similarity_logits


def _numpy_clap_loss(audio, text, scale):
    "An independent float64 NumPy version of eq. (3)-(4), used as the reference."
    a = np.asarray(audio, np.float64); t = np.asarray(text, np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True); t = t / np.linalg.norm(t, axis=1, keepdims=True)
    C = scale * t @ a.T                                   # paper's orientation: rows = texts
    def log_softmax(x, axis):
        m = x.max(axis=axis, keepdims=True)
        return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    l_audio = -np.mean(np.diag(log_softmax(C, axis=1)))   # each text row picks a clip
    l_text = -np.mean(np.diag(log_softmax(C, axis=0)))    # each clip column picks a text
    return 0.5 * (l_text + l_audio)


def _batch(n=8, d=16, noise=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    return a, a + noise * torch.randn(n, d, generator=g, dtype=torch.float64)


def test_matches_independent_numpy_reference():
    for seed in range(3):
        a, t = _batch(n=10, d=7, seed=seed)
        assert clap_loss(a, t, 7.5).item() == pytest.approx(_numpy_clap_loss(a, t, 7.5), rel=1e-9)


def test_similarity_orientation_and_shape():
    a = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    t = torch.tensor([[0.0, 2.0], [1.0, 1.0], [-1.0, 0.0]])
    s = similarity_logits(a, t, 2.0)
    assert s.shape == (2, 3)                               # rows = clips, columns = texts
    expected = 2.0 * torch.tensor([[0.0, 1 / math.sqrt(2), -1.0], [1.0, 1 / math.sqrt(2), 0.0]])
    torch.testing.assert_close(s, expected)


def test_symmetry_audio_text():
    a, t = _batch(seed=1)
    assert clap_loss(a, t, 10.0).item() == pytest.approx(clap_loss(t, a, 10.0).item(), rel=1e-12)


def test_permutation_equivariance():
    a, t = _batch(seed=2, noise=0.5)
    perm = torch.randperm(len(a), generator=torch.Generator().manual_seed(0))
    base = clap_loss(a, t, 10.0).item()
    assert clap_loss(a[perm], t[perm], 10.0).item() == pytest.approx(base, rel=1e-12)
    # permuting only one side breaks the pairs and must cost more on a well aligned batch
    assert clap_loss(a, t[perm], 10.0).item() > base + 1.0


def test_normalisation_inside():
    a, t = _batch(seed=3)
    scales_a = torch.rand(len(a), 1, dtype=torch.float64) * 10 + 0.1
    scales_t = torch.rand(len(t), 1, dtype=torch.float64) * 10 + 0.1
    assert clap_loss(a * scales_a, t * scales_t, 10.0).item() == pytest.approx(clap_loss(a, t, 10.0).item(), rel=1e-9)


def test_perfect_alignment_large_scale_is_near_zero():
    e = torch.eye(6)
    assert clap_loss(e, e, 100.0).item() < 1e-6
    assert contrastive_accuracy(e, e) == {"audio_to_text": 1.0, "text_to_audio": 1.0}


def test_chance_is_log_n():
    a, t = _batch(n=32, d=8, noise=0.0, seed=4)
    assert clap_loss(a, t, 0.0).item() == pytest.approx(math.log(32), abs=1e-12)   # scale 0: exactly
    g = torch.Generator().manual_seed(5)
    a, t = torch.randn(64, 512, generator=g), torch.randn(64, 512, generator=g)
    assert clap_loss(a, t, 1.0).item() == pytest.approx(math.log(64), abs=0.01)   # random: about log N


def test_scale_float_or_tensor():
    a, t = _batch(seed=6)
    f = clap_loss(a, t, 12.5)
    for scale in (torch.tensor(12.5), torch.tensor([12.5]), torch.tensor(12.5, dtype=torch.float64)):
        assert clap_loss(a, t, scale).item() == pytest.approx(f.item(), rel=1e-6)
    assert clap_loss(a, t, np.float32(12.5)).item() == pytest.approx(f.item(), rel=1e-6)
    assert clap_loss(a, t, 12).item() == pytest.approx(clap_loss(a, t, 12.0).item())


def test_gradient_flows_to_embeddings_and_scale():
    a, t = _batch(seed=7, noise=1.0)
    a = a.float().requires_grad_(); t = t.float().requires_grad_()
    log_scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    clap_loss(a, t, log_scale.exp()).backward()
    for g in (a.grad, t.grad, log_scale.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_scale_gradient_formula():
    a, t = _batch(seed=8, noise=1.0)
    s = 9.0
    tau = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    clap_loss(a, t, tau).backward()
    cos = similarity_logits(a, t, 1.0)
    p_row, p_col = torch.softmax(s * cos, 1), torch.softmax(s * cos, 0)
    expected = 0.5 * (((p_row * cos).sum(1) - cos.diag()).mean() + ((p_col * cos).sum(0) - cos.diag()).mean())
    # the loss runs in float32 internally, so compare at float32 precision
    assert tau.grad.item() == pytest.approx(expected.item(), abs=1e-5)


def test_half_precision_inputs_are_computed_in_float32():
    a, t = _batch(seed=9)
    l16 = clap_loss(a.to(torch.bfloat16), t.to(torch.bfloat16), 10.0)
    assert l16.dtype == torch.float32
    assert l16.item() == pytest.approx(clap_loss(a, t, 10.0).item(), abs=0.05)


def test_contrastive_accuracy_known_answer():
    e = torch.eye(4)
    t = e[[1, 0, 2, 3]]                                      # captions 0 and 1 swapped
    acc = contrastive_accuracy(e, t)
    assert acc == {"audio_to_text": 0.5, "text_to_audio": 0.5}
    # asymmetric case: text 1 is closest to clip 0 but clip 0's best text is still text 0
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [0.9, 0.1]])
    acc = contrastive_accuracy(a, t)
    assert acc["audio_to_text"] == 1.0 and acc["text_to_audio"] == 0.5


def test_wrong_shapes_raise_clear_errors():
    a = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"clap_loss: audio_emb has shape \(3, 4\) and text_emb has shape \(2, 4\)"):
        clap_loss(a, torch.randn(2, 4), 1.0)
    with pytest.raises(ValueError, match=r"embedding sizes differ \(4 vs 5\)"):
        clap_loss(a, torch.randn(3, 5), 1.0)
    with pytest.raises(ValueError, match=r"text_emb must have shape \(N, d\), got shape \(3, 4, 1\)"):
        clap_loss(a, torch.randn(3, 4, 1), 1.0)
    with pytest.raises(ValueError, match=r"audio_emb is empty"):
        similarity_logits(torch.randn(0, 4), a, 1.0)
    with pytest.raises(TypeError, match=r"audio_emb must be a torch.Tensor"):
        clap_loss(np.ones((3, 4)), a, 1.0)
    with pytest.raises(ValueError, match=r"logit_scale must be one number .* shape \(2,\)"):
        clap_loss(a, a, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"logit_scale must be a finite number >= 0"):
        clap_loss(a, a, float("nan"))
    with pytest.raises(TypeError, match=r"logit_scale must be a float or a 0-d tensor, got str"):
        clap_loss(a, a, "14")
    # N x M is fine for similarities, not for the loss
    assert similarity_logits(a, torch.randn(5, 4)).shape == (3, 5)
