"""The usual wrong answers to the clapbook labs, and what each check says about them.

`WRONG` lists (check name, a wrong function written the way a student writes it, a phrase the
check's message must contain). `tests/test_labs.py` runs every one through its check; an
instructor can read them to know what the checks catch.
"""
import math
import re

import numpy as np
import torch
import torch.nn.functional as F

# -- lab 1 ---------------------------------------------------------------------------------------
def hz_to_mel_ln(f): return 2595.0 * np.log(1.0 + f / 700.0)
def hz_to_mel_no_one(f): return 2595.0 * np.log10(f / 700.0)
def hz_to_mel_parens(f): return 2595.0 * np.log10((1.0 + f) / 700.0)

def filterbank_linear_hz(sample_rate, n_fft, n_mels, f_min, f_max):
    edges = np.linspace(f_min, f_max, n_mels + 2)            # forgot to space the edges in mels
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        lo, mid, hi = edges[m:m + 3]
        fb[m] = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return fb

def filterbank_transposed(sample_rate, n_fft, n_mels, f_min, f_max):
    from solutions import mel_filterbank_htk
    return mel_filterbank_htk(sample_rate, n_fft, n_mels, f_min, f_max).T

def filterbank_unit_area(sample_rate, n_fft, n_mels, f_min, f_max):
    from solutions import mel_filterbank_htk, hz_to_mel
    fb = mel_filterbank_htk(sample_rate, n_fft, n_mels, f_min, f_max)
    edges = 700.0 * (10.0 ** (np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2) / 2595.0) - 1.0)
    return fb * (2.0 / (edges[2:] - edges[:-2]))[:, None]

def db_20(power): return 20 * torch.log10(power.clamp_min(1e-10))
def db_ln(power): return 10 * torch.log(power.clamp_min(1e-10))
def db_no_floor(power): return 10 * torch.log10(power)
def db_floor_after(power): return torch.clamp(10 * torch.log10(power), min=1e-10)

def log_mel_magnitude(wave, n_fft, hop_length, filters):
    spec = torch.stft(wave, n_fft, hop_length, window=torch.hann_window(n_fft), return_complex=True)
    return 10 * torch.log10((filters @ spec.abs()).clamp_min(1e-10))

def log_mel_no_window(wave, n_fft, hop_length, filters):
    spec = torch.stft(wave, n_fft, hop_length, return_complex=True)       # torch warns: rectangular window
    return 10 * torch.log10((filters @ spec.abs() ** 2).clamp_min(1e-10))

def log_mel_no_db(wave, n_fft, hop_length, filters):
    spec = torch.stft(wave, n_fft, hop_length, window=torch.hann_window(n_fft), return_complex=True)
    return filters @ spec.abs() ** 2

# -- lab 2 ---------------------------------------------------------------------------------------
def sim_log_scale(a, t, log_scale): return log_scale * F.normalize(a, dim=-1) @ F.normalize(t, dim=-1).T
def sim_unnormalised(a, t, log_scale): return log_scale.exp() * a @ t.T
def sim_divided(a, t, log_scale): return F.normalize(a, dim=-1) @ F.normalize(t, dim=-1).T / log_scale.exp()
def sim_no_scale(a, t, log_scale): return F.normalize(a, dim=-1) @ F.normalize(t, dim=-1).T
def sim_transposed(a, t, log_scale): return log_scale.exp() * F.normalize(t, dim=-1) @ F.normalize(a, dim=-1).T

def probs_dim0(logits): return torch.softmax(logits, dim=0)
def probs_log(logits): return F.log_softmax(logits, dim=-1)
def probs_sigmoid(logits): return logits.sigmoid()
def probs_no_exp(logits): return logits / logits.sum(dim=1, keepdim=True)

def _logits(a, t, log_scale): return log_scale.exp() * F.normalize(a, dim=-1) @ F.normalize(t, dim=-1).T
def loss_rows_only(a, t, log_scale): return F.cross_entropy(_logits(a, t, log_scale), torch.arange(len(a)))
def loss_forgot_transpose(a, t, log_scale):   # "the other direction": the same call twice, softmax down the columns
    lg = _logits(a, t, log_scale); y = torch.arange(len(a))
    return 0.5 * (F.nll_loss(F.log_softmax(lg, dim=0).T, y) + F.nll_loss(F.log_softmax(lg, dim=0).T, y))
def loss_added(a, t, log_scale):
    lg = _logits(a, t, log_scale); y = torch.arange(len(a))
    return F.cross_entropy(lg, y) + F.cross_entropy(lg.T, y)
def loss_summed(a, t, log_scale):
    lg = _logits(a, t, log_scale); y = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(lg, y, reduction="sum") + F.cross_entropy(lg.T, y, reduction="sum"))
def loss_log_scale(a, t, log_scale):
    lg = log_scale * F.normalize(a, dim=-1) @ F.normalize(t, dim=-1).T; y = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(lg, y) + F.cross_entropy(lg.T, y))
def loss_unnormalised(a, t, log_scale):
    lg = log_scale.exp() * a @ t.T; y = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(lg, y) + F.cross_entropy(lg.T, y))

# -- lab 3 ---------------------------------------------------------------------------------------
def last_off_by_one(mask): return mask.sum(1)
def last_column(mask): return torch.full((mask.shape[0],), mask.shape[1] - 1)
def last_first(mask): return torch.zeros(mask.shape[0], dtype=torch.long)

def pool_last_column(hidden, mask): return hidden[:, -1, :]
def pool_first(hidden, mask): return hidden[:, 0, :]
def pool_mean_all(hidden, mask): return hidden.mean(dim=1)
def pool_mean_real(hidden, mask):
    m = mask.unsqueeze(-1).float()
    return (hidden * m).sum(1) / m.sum(1)

# -- lab 4 ---------------------------------------------------------------------------------------
def classes_wrong_axis(e): return F.normalize(F.normalize(e, dim=-1).mean(dim=1), dim=-1)
def classes_no_renorm(e): return F.normalize(e, dim=-1).mean(dim=0)
def classes_no_prenorm(e): return F.normalize(e.mean(dim=0), dim=-1)
def classes_no_norm(e): return e.mean(dim=0)

def zs_dim0(a, c, s): return (s * F.normalize(a, dim=-1) @ F.normalize(c, dim=-1).T).softmax(dim=0)
def zs_unnormalised(a, c, s): return (s * a @ c.T).softmax(dim=-1)
def zs_no_scale(a, c, s): return (F.normalize(a, dim=-1) @ F.normalize(c, dim=-1).T).softmax(dim=-1)
def zs_sigmoid(a, c, s): return torch.sigmoid(s * F.normalize(a, dim=-1) @ F.normalize(c, dim=-1).T)

# -- lab 5 ---------------------------------------------------------------------------------------
def _cos(e): e = F.normalize(e, dim=-1); return e @ e.T
def soft_swapped(e, beta, s): return beta * torch.eye(len(e)) + (1 - beta) * torch.softmax(s * _cos(e), dim=1)
def soft_unnormalised(e, beta, s): return (1 - beta) * torch.eye(len(e)) + beta * torch.softmax(s * e @ e.T, dim=1)
def soft_no_scale(e, beta, s): return (1 - beta) * torch.eye(len(e)) + beta * torch.softmax(_cos(e), dim=1)
def soft_dim0(e, beta, s): return (1 - beta) * torch.eye(len(e)) + beta * torch.softmax(s * _cos(e), dim=0)
def soft_no_onehot(e, beta, s): return torch.softmax(s * _cos(e), dim=1)

def sce_dim0(l, y): return -(y * F.log_softmax(l, dim=0)).sum(1).mean()
def sce_no_log(l, y): return -(y * F.softmax(l, dim=1)).sum(1).mean()
def sce_summed(l, y): return -(y * F.log_softmax(l, dim=1)).sum()
def sce_mean_all(l, y): return -(y * F.log_softmax(l, dim=1)).mean()
def sce_kl(l, y): return (y * (y.clamp_min(1e-30).log() - F.log_softmax(l, dim=1))).sum(1).mean()

# -- lab 6 ---------------------------------------------------------------------------------------
_CONNECTORS = (", and then ", " followed by ", " before ", " after ")
def _split(c):
    for k in _CONNECTORS:
        if k in c: return (*c.split(k), k)
def order_after_like_followed(c): a, b, k = _split(c); return [a, b]
def order_before_reversed_too(c): a, b, k = _split(c); return [b, a] if k in (" after ", " before ") else [a, b]
def order_all_reversed(c): a, b, k = _split(c); return [a, b] if k == " after " else [b, a]

_OTHER = {" after ": " before ", " before ": " after ", " followed by ": " after ", ", and then ": " after "}
def neg_same_meaning(c): a, b, k = _split(c); return b + _OTHER[k] + a
def neg_unchanged(c): return c
def neg_connector_only(c): a, b, k = _split(c); return a + _OTHER[k] + b

def _cos_rows(x, y): return (F.normalize(x, dim=-1) * F.normalize(y, dim=-1)).sum(-1)
def tl_wrong_target(a, t, n, s):
    lg = s * torch.stack([_cos_rows(a, t), _cos_rows(a, n)], 1)
    return F.cross_entropy(lg, torch.ones(len(a), dtype=torch.long))
def tl_over_batch(a, t, n, s): return -F.log_softmax(s * _cos_rows(a, t), dim=0).mean()
def tl_unnormalised(a, t, n, s):
    lg = s * torch.stack([(a * t).sum(-1), (a * n).sum(-1)], 1)
    return F.cross_entropy(lg, torch.zeros(len(a), dtype=torch.long))
def tl_no_scale(a, t, n, s):
    lg = torch.stack([_cos_rows(a, t), _cos_rows(a, n)], 1)
    return F.cross_entropy(lg, torch.zeros(len(a), dtype=torch.long))

def tc_ties_win(a, t, n): return 100.0 * (_cos_rows(a, t) >= _cos_rows(a, n)).float().mean()
def tc_fraction(a, t, n): return (_cos_rows(a, t) > _cos_rows(a, n)).float().mean()
def tc_unnormalised(a, t, n): return 100.0 * ((a * t).sum(-1) > (a * n).sum(-1)).float().mean()

# -- lab 7 ---------------------------------------------------------------------------------------
def insert_at_end(e, m, tok):
    out = torch.cat([e, tok[:, None]], dim=1)                      # after the padding
    return out, (torch.arange(e.shape[1] + 1)[None] <= m.sum(1, keepdim=True)).long()
def insert_after_eot(e, m, tok):
    rows = [torch.cat([e[i, :int(m[i].sum())], tok[i:i + 1], e[i, int(m[i].sum()):]]) for i in range(len(e))]
    return torch.stack(rows), (torch.arange(e.shape[1] + 1)[None] <= m.sum(1, keepdim=True)).long()
def insert_replace_eot(e, m, tok):
    out = e.clone()
    for i in range(len(e)): out[i, int(m[i].sum()) - 1] = tok[i]
    return out, m
def insert_mask_unchanged(e, m, tok):
    rows = [torch.cat([e[i, :int(m[i].sum()) - 1], tok[i:i + 1], e[i, int(m[i].sum()) - 1:]]) for i in range(len(e))]
    return torch.stack(rows), F.pad(m, (0, 1))

def compose_sum(x, u): return x + u
def compose_concat(x, u): return torch.cat([x, u], dim=1)

# -- the new kinds of mistake: wrong types, lost gradients, in-place changes, a batch of one, logits near 100,
#    mistakes made on some cases only. Each is right on the values the old checks compared. ------------------
# lab 1
def hz_to_mel_list(f): return [2595.0 * math.log10(1.0 + x / 700.0) for x in f]
def hz_to_mel_in_place(f):
    f /= 700.0; f += 1.0                                    # changes the caller's array
    return 2595.0 * np.log10(f)
def hz_to_mel_half(f): return (2595.0 * np.log10(1.0 + f / 700.0)).astype(np.float16)
def filterbank_list(sample_rate, n_fft, n_mels, f_min, f_max):
    from solutions import mel_filterbank_htk
    return mel_filterbank_htk(sample_rate, n_fft, n_mels, f_min, f_max).tolist()
def db_in_place(power):
    power.clamp_(min=1e-10)                                 # floors the caller's spectrogram too
    return 10 * torch.log10(power)
def db_numpy(power): return 10 * np.log10(np.maximum(power.numpy(), 1e-10))
def db_half(power): return (10 * torch.log10(power.clamp_min(1e-10))).half()
def log_mel_squeeze(wave, n_fft, hop_length, filters):
    spec = torch.stft(wave.squeeze(), n_fft, hop_length, window=torch.hann_window(n_fft), return_complex=True)
    return 10 * torch.log10((filters @ spec.abs() ** 2).clamp_min(1e-10))
def log_mel_normalise_in_place(wave, n_fft, hop_length, filters):
    wave /= wave.abs().amax(dim=1, keepdim=True)           # peak-normalises the caller's waves
    spec = torch.stft(wave, n_fft, hop_length, window=torch.hann_window(n_fft), return_complex=True)
    return 10 * torch.log10((filters @ spec.abs() ** 2).clamp_min(1e-10))
def log_mel_numpy(wave, n_fft, hop_length, filters):
    spec = torch.stft(wave, n_fft, hop_length, window=torch.hann_window(n_fft), return_complex=True)
    return 10 * np.log10(np.maximum((filters @ spec.abs() ** 2).numpy(), 1e-10))

# lab 2
def _unit(x): return x / x.norm(dim=-1, keepdim=True)
def sim_item_scale(a, t, log_scale): return math.exp(log_scale.item()) * _unit(a) @ _unit(t).T
def sim_no_grad(a, t, log_scale):
    with torch.no_grad(): return log_scale.exp() * _unit(a) @ _unit(t).T
def sim_in_place(a, t, log_scale):
    a /= a.norm(dim=-1, keepdim=True); t /= t.norm(dim=-1, keepdim=True)
    return log_scale.exp() * a @ t.T
def sim_squeeze(a, t, log_scale): return (log_scale.exp() * _unit(a) @ _unit(t).T).squeeze()
def sim_numpy(a, t, log_scale):
    an, tn = a.numpy(), t.numpy()
    an, tn = an / np.linalg.norm(an, axis=1, keepdims=True), tn / np.linalg.norm(tn, axis=1, keepdims=True)
    return np.exp(log_scale.item()) * an @ tn.T
def sim_half(a, t, log_scale): return (log_scale.exp() * _unit(a) @ _unit(t).T).half()

def probs_manual_exp(logits): e = logits.exp(); return e / e.sum(dim=1, keepdim=True)
def probs_in_place(logits):
    logits -= logits.max(dim=1, keepdim=True).values         # right idea, on the caller's logits
    e = logits.exp(); return e / e.sum(dim=1, keepdim=True)
def probs_squeeze(logits): return torch.softmax(logits.squeeze(), dim=-1)
def probs_numpy(logits):
    e = np.exp(logits.numpy() - logits.numpy().max(1, keepdims=True)); return e / e.sum(1, keepdims=True)

def loss_item(a, t, log_scale):
    from solutions import contrastive_loss
    return contrastive_loss(a, t, log_scale).item()
def loss_math_exp(a, t, log_scale):
    lg = math.exp(log_scale.item()) * _unit(a) @ _unit(t).T; y = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(lg, y) + F.cross_entropy(lg.T, y))
def loss_no_grad(a, t, log_scale):
    from solutions import contrastive_loss
    with torch.no_grad(): return contrastive_loss(a, t, log_scale)
def loss_manual_exp(a, t, log_scale):
    e = _logits(a, t, log_scale).exp()
    return -0.5 * (torch.log(e.diag() / e.sum(1)).mean() + torch.log(e.diag() / e.sum(0)).mean())
def loss_squeeze(a, t, log_scale):
    lg = _logits(a, t, log_scale).squeeze(); y = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(lg, y) + F.cross_entropy(lg.T, y))
def loss_in_place(a, t, log_scale):
    a /= a.norm(dim=-1, keepdim=True); t /= t.norm(dim=-1, keepdim=True)
    lg = log_scale.exp() * a @ t.T; y = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(lg, y) + F.cross_entropy(lg.T, y))
def loss_per_pair(a, t, log_scale):
    lg = _logits(a, t, log_scale); y = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(lg, y, reduction="none") + F.cross_entropy(lg.T, y, reduction="none"))
def loss_numpy(a, t, log_scale):
    from solutions import contrastive_loss
    return contrastive_loss(a, t, log_scale).detach().numpy()
def loss_half(a, t, log_scale):
    from solutions import contrastive_loss
    return contrastive_loss(a.half().float(), t, log_scale).half()
def loss_detached_scale(a, t, log_scale):
    lg = log_scale.exp().detach() * _unit(a) @ _unit(t).T; y = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(lg, y) + F.cross_entropy(lg.T, y))
def loss_rows_only_partly(a, t, log_scale):                  # the column half only for batches of 6
    lg = _logits(a, t, log_scale); y = torch.arange(len(a))
    return F.cross_entropy(lg, y) if len(a) != 6 else 0.5 * (F.cross_entropy(lg, y) + F.cross_entropy(lg.T, y))

# lab 3
def last_list(mask): return (mask.sum(1) - 1).tolist()
def last_float(mask): return mask.float().sum(1) - 1
def last_squeeze(mask): return (mask.sum(1) - 1).squeeze()
def last_numpy(mask): return mask.numpy().sum(1) - 1
def last_in_place(mask):
    mask.mul_(torch.arange(mask.shape[1]))                   # position-weighted, on the caller's mask
    return mask.max(dim=1).values
def last_argmin(mask): return mask.argmin(dim=1) - 1         # a row without padding has no 0: argmin is 0
def last_nonzero_list(mask): return [row.nonzero().max() for row in mask]

def pool_gather_squeeze(hidden, mask):
    idx = (mask.sum(1) - 1)[:, None, None].expand(-1, 1, hidden.shape[-1])
    return hidden.gather(1, idx).squeeze()
def pool_no_grad(hidden, mask):
    with torch.no_grad(): return hidden[torch.arange(len(hidden)), mask.sum(1) - 1]
def pool_numpy(hidden, mask): return hidden.numpy()[np.arange(len(hidden)), mask.numpy().sum(1) - 1]
def pool_in_place(hidden, mask):
    hidden *= mask[..., None]                                # zeroes the caller's padding states
    return hidden[torch.arange(len(hidden)), mask.sum(1) - 1]

# lab 4
def classes_squeeze(e): return F.normalize(F.normalize(e, dim=-1).squeeze().mean(dim=0), dim=-1)
def classes_in_place(e):
    e /= e.norm(dim=-1, keepdim=True)
    return F.normalize(e.mean(dim=0), dim=-1)
def classes_numpy(e):
    u = e.numpy() / np.linalg.norm(e.numpy(), axis=-1, keepdims=True); m = u.mean(0)
    return m / np.linalg.norm(m, axis=-1, keepdims=True)
def zs_manual_exp(a, c, s):
    e = (s * F.normalize(a, dim=-1) @ F.normalize(c, dim=-1).T).exp(); return e / e.sum(1, keepdim=True)
def zs_squeeze(a, c, s): return (s * F.normalize(a, dim=-1) @ F.normalize(c, dim=-1).T).squeeze().softmax(dim=-1)
def zs_in_place(a, c, s):
    a /= a.norm(dim=-1, keepdim=True); c /= c.norm(dim=-1, keepdim=True)
    return (s * a @ c.T).softmax(dim=1)

# lab 5
def soft_in_place(e, beta, s):
    e /= e.norm(dim=-1, keepdim=True)
    return (1 - beta) * torch.eye(len(e)) + beta * torch.softmax(s * e @ e.T, dim=1)
def soft_manual_exp(e, beta, s):
    x = (s * _cos(e)).exp(); return (1 - beta) * torch.eye(len(e)) + beta * x / x.sum(1, keepdim=True)
def soft_squeeze(e, beta, s): return ((1 - beta) * torch.eye(len(e)) + beta * torch.softmax(s * _cos(e), dim=1)).squeeze()
def soft_numpy(e, beta, s):
    u = F.normalize(e, dim=-1).numpy(); x = np.exp(s * u @ u.T - (s * u @ u.T).max(1, keepdims=True))
    return (1 - beta) * np.eye(len(u)) + beta * x / x.sum(1, keepdims=True)

def sce_item(l, y): return -(y * F.log_softmax(l, dim=1)).sum(1).mean().item()
def sce_log_of_softmax(l, y): return -(y * torch.log(torch.softmax(l, dim=1))).sum(1).mean()
def sce_manual_exp(l, y): return -(y * (l - torch.log(l.exp().sum(1, keepdim=True)))).sum(1).mean()
def sce_no_grad(l, y):
    with torch.no_grad(): return -(y * F.log_softmax(l, dim=1)).sum(1).mean()
def sce_in_place(l, y):
    l -= l.logsumexp(dim=1, keepdim=True)                    # log-probabilities, written over the caller's logits
    return -(y * l).sum(1).mean()
def sce_per_row(l, y): return -(y * F.log_softmax(l, dim=1)).sum(1)

# lab 6
def order_substring(c):
    for k in ("after", "before", "followed by", "and then"):  # 'after' is found inside 'afternoon'
        if k in c:
            a, b = c.split(k, 1); a, b = a.strip(" ,"), b.strip(" ,")
            return [b, a] if k == "after" else [a, b]
def order_substring_maxsplit(c):
    for k in (", and then", "followed by", "before", "after"):  # the first 'after' may be the one in 'afternoon'
        if k in c:
            a, b = (p.strip(" ,") for p in c.split(k, 1))
            return [b, a] if k == "after" else [a, b]
def order_regex_unanchored(c):
    m = re.search(r"(, and then|followed by|before|after)", c)   # no \b: matches inside 'afternoon'
    a, b = c[:m.start()].strip(" ,"), c[m.end():].strip(" ,")
    return [b, a] if m.group(1) == "after" else [a, b]
def order_before_only(c): a, b, k = _split(c); return [b, a] if k == " before " else [a, b]   # mixed up after and before
def order_comma(c):
    for k in (" and then ", " followed by ", " before ", " after "):
        if k in c: a, b = c.split(k); return [b, a] if k == " after " else [a, b]
def order_string(c): a, b, k = _split(c); return f"{b} then {a}" if k == " after " else f"{a} then {b}"

def neg_after_unchanged(c): a, b, k = _split(c); return c if k == " after " else b + k + a
def neg_substring(c):
    for k in ("after", "before", "followed by", ", and then"):
        if k in c: a, b = c.split(k, 1); return b.strip() + (" " if k[0] != "," else "") + k + " " + a.strip()
def neg_substring_maxsplit(c):
    for k in (", and then", " followed by", " before", " after"):
        if k.strip(" ,") in c:
            a, b = c.split(k.strip(" ,"), 1); return b.strip(" ,") + k + " " + a.strip(" ,")
def neg_list(c): a, b, k = _split(c); return [b, k.strip(" ,"), a]
def neg_no_comma(c): a, b, k = _split(c); return b + (" and then " if k == ", and then " else k) + a

def tl_item(a, t, n, s):
    from solutions import temporal_loss
    return temporal_loss(a, t, n, s).item()
def tl_manual_exp(a, t, n, s):
    p, q = (s * _cos_rows(a, t)).exp(), (s * _cos_rows(a, n)).exp()
    return -torch.log(p / (p + q)).mean()
def tl_no_grad(a, t, n, s):
    from solutions import temporal_loss
    with torch.no_grad(): return temporal_loss(a, t, n, s)
def tl_detached_negative(a, t, n, s):
    lg = s * torch.stack([_cos_rows(a, t), _cos_rows(a, n.detach())], 1)
    return F.cross_entropy(lg, torch.zeros(len(a), dtype=torch.long))
def tl_squeeze(a, t, n, s):
    lg = s * torch.stack([_cos_rows(a, t), _cos_rows(a, n)], 1).squeeze()
    return -torch.log_softmax(lg, dim=1)[:, 0].mean()
def tl_in_place(a, t, n, s):
    a /= a.norm(dim=-1, keepdim=True)
    lg = s * torch.stack([_cos_rows(a, t), _cos_rows(a, n)], 1)
    return F.cross_entropy(lg, torch.zeros(len(a), dtype=torch.long))

def tc_in_place(a, t, n):
    for x in (a, t, n): x /= x.norm(dim=-1, keepdim=True)
    return 100.0 * ((a * t).sum(-1) > (a * n).sum(-1)).float().mean()
def tc_per_clip(a, t, n): return 100.0 * (_cos_rows(a, t) > _cos_rows(a, n)).float()
def tc_per_clip_in_place(a, t, n):
    a /= a.norm(dim=-1, keepdim=True)
    return 100.0 * (F.cosine_similarity(a, t, dim=-1) > F.cosine_similarity(a, n, dim=-1)).float().mean()
def tc_list(a, t, n): return [100.0 * float((_cos_rows(a, t) > _cos_rows(a, n)).float().mean())]

# lab 7
def insert_double(e, m, tok):
    from solutions import insert_before_eot
    out, mask = insert_before_eot(e, m, tok); return out.double(), mask
def insert_detached_token(e, m, tok):
    from solutions import insert_before_eot
    return insert_before_eot(e, m, tok.detach())
def insert_numpy(e, m, tok):
    rows = [np.concatenate([e[i, :int(m[i].sum()) - 1].numpy(), tok[i:i + 1].numpy(), e[i, int(m[i].sum()) - 1:].numpy()]) for i in range(len(e))]
    return torch.tensor(np.stack(rows)), (torch.arange(e.shape[1] + 1)[None] <= m.sum(1, keepdim=True)).long()
def insert_squeeze(e, m, tok):
    last = (m.sum(1) - 1).squeeze()
    rows = [torch.cat([e[i, :last[i]], tok[i:i + 1], e[i, last[i]:]]) for i in range(len(e))]
    return torch.stack(rows), (torch.arange(e.shape[1] + 1)[None] <= m.sum(1, keepdim=True)).long()
def insert_in_place(e, m, tok):
    last = m.sum(1) - 1
    eot = e[torch.arange(len(e)), last].clone()
    e[torch.arange(len(e)), last] = tok                      # the token written into the caller's embeddings
    rows = [torch.cat([e[i, :last[i] + 1], eot[i:i + 1], e[i, last[i] + 1:]]) for i in range(len(e))]
    return torch.stack(rows), (torch.arange(e.shape[1] + 1)[None] <= m.sum(1, keepdim=True)).long()

def compose_in_place(x, u): x += u; x /= 2; return x
def compose_numpy(x, u): return (x.numpy() + u.numpy()) / 2
def compose_half(x, u): return ((x + u) / 2).half()


WRONG = [
    ("check_hz_to_mel", hz_to_mel_ln, "natural log"), ("check_hz_to_mel", hz_to_mel_no_one, "'1 +' is missing"),
    ("check_hz_to_mel", hz_to_mel_parens, "divided (1 + f)"),
    ("check_mel_filterbank", filterbank_linear_hz, "evenly in Hz"), ("check_mel_filterbank", filterbank_transposed, "transposed"),
    ("check_mel_filterbank", filterbank_unit_area, "unit area"),
    ("check_power_to_db", db_20, "20 * log10"), ("check_power_to_db", db_ln, "natural log"),
    ("check_power_to_db", db_no_floor, "-inf"), ("check_power_to_db", db_floor_after, "clamped after the log"),
    ("check_log_mel", log_mel_magnitude, "magnitude"), ("check_log_mel", log_mel_no_window, "no window"),
    ("check_log_mel", log_mel_no_db, "dB step"),
    ("check_similarity", sim_log_scale, "log_scale itself"), ("check_similarity", sim_unnormalised, "missing normalisation"),
    ("check_similarity", sim_divided, "divided by the multiplier"), ("check_similarity", sim_no_scale, "forgot the temperature"),
    ("check_similarity", sim_transposed, "swapped"),
    ("check_caption_probabilities", probs_dim0, "wrong axis for the softmax"), ("check_caption_probabilities", probs_log, "log-probabilities"),
    ("check_caption_probabilities", probs_sigmoid, "sigmoid"), ("check_caption_probabilities", probs_no_exp, "exponentiates"),
    ("check_contrastive_loss", loss_rows_only, "only the audio-to-text half"),
    ("check_contrastive_loss", loss_forgot_transpose, "only the text-to-audio half"),
    ("check_contrastive_loss", loss_added, "added the two halves"), ("check_contrastive_loss", loss_summed, "summed over the batch"),
    ("check_contrastive_loss", loss_log_scale, "log_scale itself"), ("check_contrastive_loss", loss_unnormalised, "missing normalisation"),
    ("check_last_token_positions", last_off_by_one, "off by one"), ("check_last_token_positions", last_column, "pooled the padding token"),
    ("check_last_token_positions", last_first, "first token"),
    ("check_eot_pool", pool_last_column, "pooled the padding token"), ("check_eot_pool", pool_first, "[CLS]"),
    ("check_eot_pool", pool_mean_all, "padding included"), ("check_eot_pool", pool_mean_real, "mean pooling"),
    ("check_class_embeddings", classes_wrong_axis, "over the classes"), ("check_class_embeddings", classes_no_renorm, "normalise again"),
    ("check_class_embeddings", classes_no_prenorm, "before averaging"), ("check_class_embeddings", classes_no_norm, "no normalisation at all"),
    ("check_zero_shot_probabilities", zs_dim0, "wrong axis for the softmax"),
    ("check_zero_shot_probabilities", zs_unnormalised, "missing normalisation"),
    ("check_zero_shot_probabilities", zs_no_scale, "forgot logit_scale"), ("check_zero_shot_probabilities", zs_sigmoid, "multi-label"),
    ("check_soft_targets", soft_swapped, "weights are swapped"), ("check_soft_targets", soft_unnormalised, "missing normalisation"),
    ("check_soft_targets", soft_no_scale, "forgot teacher_scale"), ("check_soft_targets", soft_dim0, "wrong axis for the softmax"),
    ("check_soft_targets", soft_no_onehot, "without mixing in the one-hot"),
    ("check_soft_cross_entropy", sce_dim0, "wrong axis for the softmax"), ("check_soft_cross_entropy", sce_no_log, "forgot the log"),
    ("check_soft_cross_entropy", sce_summed, "summed over the rows"), ("check_soft_cross_entropy", sce_mean_all, "averaged over every cell"),
    ("check_soft_cross_entropy", sce_kl, "KL divergence"),
    ("check_events_in_time_order", order_after_like_followed, "swapped the order of 'after'"),
    ("check_events_in_time_order", order_before_reversed_too, "'before' keeps the sentence order"),
    ("check_events_in_time_order", order_all_reversed, "every caption came back reversed"),
    ("check_negative_caption", neg_same_meaning, "says the same thing"), ("check_negative_caption", neg_unchanged, "unchanged"),
    ("check_negative_caption", neg_connector_only, "changed the connector"),
    ("check_temporal_loss", tl_wrong_target, "wrong target"), ("check_temporal_loss", tl_over_batch, "over the batch"),
    ("check_temporal_loss", tl_unnormalised, "missing normalisation"), ("check_temporal_loss", tl_no_scale, "forgot logit_scale"),
    ("check_t_classify", tc_ties_win, "a tie is not a win"), ("check_t_classify", tc_fraction, "percentage"),
    ("check_t_classify", tc_unnormalised, "missing normalisation"),
    ("check_insert_before_eot", insert_at_end, "after the padding"), ("check_insert_before_eot", insert_after_eot, "after the end-of-text"),
    ("check_insert_before_eot", insert_replace_eot, "overwrote the end-of-text"),
    ("check_insert_before_eot", insert_mask_unchanged, "mask was not extended"),
    ("check_compose_audio", compose_sum, "summed the clips"), ("check_compose_audio", compose_concat, "concatenated in time"),
 
    # the new kinds: type, gradient, inputs unchanged, a batch of one, logits near 100, some cases only
    ("check_hz_to_mel", hz_to_mel_list, "Python list"), ("check_hz_to_mel", hz_to_mel_in_place, "changed its input in place"),
    ("check_hz_to_mel", hz_to_mel_half, "half precision"),
    ("check_mel_filterbank", filterbank_list, "Python list"),
    ("check_power_to_db", db_in_place, "changed its input in place"), ("check_power_to_db", db_numpy, "returned NumPy"),
    ("check_power_to_db", db_half, "half precision"),
    ("check_log_mel", log_mel_squeeze, "a batch of one"), ("check_log_mel", log_mel_normalise_in_place, "changed its input in place"),
    ("check_log_mel", log_mel_numpy, "returned NumPy"),
    ("check_similarity", sim_item_scale, "no gradient reaches log_scale"), ("check_similarity", sim_no_grad, "no gradient reaches"),
    ("check_similarity", sim_in_place, "changed its input in place"), ("check_similarity", sim_squeeze, "a batch of one"),
    ("check_similarity", sim_numpy, "returned NumPy"), ("check_similarity", sim_half, "half precision"),
    ("check_caption_probabilities", probs_manual_exp, "logits near 100"), ("check_caption_probabilities", probs_in_place, "changed its input in place"),
    ("check_caption_probabilities", probs_squeeze, "a batch of one"), ("check_caption_probabilities", probs_numpy, "returned NumPy"),
    ("check_contrastive_loss", loss_item, "your loss is a Python float"), ("check_contrastive_loss", loss_math_exp, "no gradient reaches log_scale"),
    ("check_contrastive_loss", loss_no_grad, "no gradient reaches"), ("check_contrastive_loss", loss_manual_exp, "logits near 100"),
    ("check_contrastive_loss", loss_squeeze, "a batch of one"), ("check_contrastive_loss", loss_in_place, "changed its input in place"),
    ("check_contrastive_loss", loss_per_pair, "a loss is one number"), ("check_contrastive_loss", loss_numpy, "returned NumPy"),
    ("check_contrastive_loss", loss_rows_only_partly, "only the audio-to-text half"),
    ("check_contrastive_loss", loss_half, "half precision"), ("check_contrastive_loss", loss_detached_scale, "no gradient reaches log_scale"),
    ("check_last_token_positions", last_list, "Python list"), ("check_last_token_positions", last_float, "float32 tensor"),
    ("check_last_token_positions", last_squeeze, "a batch of one"), ("check_last_token_positions", last_numpy, "returned NumPy"),
    ("check_last_token_positions", last_in_place, "changed its input in place"), ("check_last_token_positions", last_argmin, "negative index"),
    ("check_last_token_positions", last_nonzero_list, "Python list"),
    ("check_eot_pool", pool_gather_squeeze, "a batch of one"), ("check_eot_pool", pool_no_grad, "no gradient reaches hidden"),
    ("check_eot_pool", pool_numpy, "returned NumPy"), ("check_eot_pool", pool_in_place, "changed its input in place"),
    ("check_class_embeddings", classes_squeeze, "one template"), ("check_class_embeddings", classes_in_place, "changed its input in place"),
    ("check_class_embeddings", classes_numpy, "returned NumPy"),
    ("check_zero_shot_probabilities", zs_manual_exp, "logits near 100"), ("check_zero_shot_probabilities", zs_squeeze, "a batch of one"),
    ("check_zero_shot_probabilities", zs_in_place, "changed its input in place"),
    ("check_soft_targets", soft_in_place, "changed its input in place"), ("check_soft_targets", soft_manual_exp, "logits near 100"),
    ("check_soft_targets", soft_squeeze, "a batch of one"), ("check_soft_targets", soft_numpy, "returned NumPy"),
    ("check_soft_cross_entropy", sce_item, "your loss is a Python float"), ("check_soft_cross_entropy", sce_log_of_softmax, "logits near 100"),
    ("check_soft_cross_entropy", sce_manual_exp, "logits near 100"), ("check_soft_cross_entropy", sce_no_grad, "no gradient reaches logits"),
    ("check_soft_cross_entropy", sce_in_place, "changed its input in place"), ("check_soft_cross_entropy", sce_per_row, "a loss is one number"),
    ("check_events_in_time_order", order_substring, "'afternoon' is not"),
    ("check_events_in_time_order", order_substring_maxsplit, "'afternoon' is not"), ("check_events_in_time_order", order_regex_unanchored, "'afternoon' is not"), ("check_events_in_time_order", order_before_only, "'before' keeps the sentence order"),
    ("check_events_in_time_order", order_comma, "a space or a comma"), ("check_events_in_time_order", order_string, "one string"),
    ("check_negative_caption", neg_after_unchanged, "unchanged"), ("check_negative_caption", neg_substring, "'afternoon' is not"),
    ("check_negative_caption", neg_substring_maxsplit, "'afternoon' is not"),
    ("check_negative_caption", neg_list, "you returned a list"), ("check_negative_caption", neg_no_comma, "spaces or commas"),
    ("check_temporal_loss", tl_item, "your loss is a Python float"), ("check_temporal_loss", tl_manual_exp, "logits near 100"),
    ("check_temporal_loss", tl_no_grad, "no gradient reaches"), ("check_temporal_loss", tl_detached_negative, "no gradient reaches neg_text_emb"),
    ("check_temporal_loss", tl_squeeze, "a batch of one"), ("check_temporal_loss", tl_in_place, "changed its input in place"),
    ("check_t_classify", tc_in_place, "changed its input in place"), ("check_t_classify", tc_per_clip, "wrong shape"),
    ("check_t_classify", tc_list, "return one number"), ("check_t_classify", tc_per_clip_in_place, "changed its input in place"),
    ("check_insert_before_eot", insert_double, "keep the input's dtype"), ("check_insert_before_eot", insert_detached_token, "no gradient reaches token"),
    ("check_insert_before_eot", insert_numpy, "no gradient reaches"), ("check_insert_before_eot", insert_squeeze, "a batch of one"),
    ("check_insert_before_eot", insert_in_place, "changed its input in place"),
    ("check_compose_audio", compose_in_place, "changed its input in place"), ("check_compose_audio", compose_numpy, "returned NumPy"),
    ("check_compose_audio", compose_half, "half precision"),
]
