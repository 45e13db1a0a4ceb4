"""Right answers to the clapbook labs written in other ways than `solutions.py`: every check must accept them.

`VALID` lists (check name, a right function written the way a student might write it). They differ from
the reference solutions in ways the later cells of the lab do not care about: another formula for the
same numbers, float64 where float32 would do, a tuple where a list is asked and only indexed, a mask of
another dtype, a Python float for a percentage. `tests/test_labs.py` runs every one through its check.
"""
import math
import re

import numpy as np
import torch
import torch.nn.functional as F

# -- lab 1 ---------------------------------------------------------------------------------------
def hz_to_mel_natural_log(f): return 2595.0 / math.log(10) * np.log1p(f / 700.0)
def hz_to_mel_1127(f): return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)          # HTK's constant in natural-log form
def hz_to_mel_loop(f): return np.array([2595.0 * math.log10(1.0 + x / 700.0) for x in f])
def hz_to_mel_float32(f): return (2595.0 * np.log10(1.0 + f / 700.0)).astype(np.float32)
def hz_to_mel_torch(f): return 2595.0 * torch.log10(1.0 + torch.as_tensor(f) / 700.0)

def filterbank_vectorised(sample_rate, n_fft, n_mels, f_min, f_max):
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    edges = 700.0 * (10.0 ** (np.linspace(mel(f_min), mel(f_max), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
def filterbank_torch_float32(sample_rate, n_fft, n_mels, f_min, f_max):
    return torch.tensor(filterbank_vectorised(sample_rate, n_fft, n_mels, f_min, f_max), dtype=torch.float32)
def filterbank_loops(sample_rate, n_fft, n_mels, f_min, f_max):
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)
    step = (mel(f_max) - mel(f_min)) / (n_mels + 1)
    edges = [700.0 * (10.0 ** ((mel(f_min) + k * step) / 2595.0) - 1.0) for k in range(n_mels + 2)]
    fb = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for m in range(n_mels):
        for k in range(n_fft // 2 + 1):
            f = k * sample_rate / n_fft
            fb[m, k] = max(0.0, min((f - edges[m]) / (edges[m + 1] - edges[m]), (edges[m + 2] - f) / (edges[m + 2] - edges[m + 1])))
    return fb

def db_clamp(power): return 10 * torch.log10(torch.clamp(power, min=1e-10))
def db_maximum(power): return 10 * torch.log10(torch.maximum(power, torch.tensor(1e-10)))
def db_natural_log(power): return 10 * power.clamp(min=1e-10).log() / math.log(10)
def db_where(power): return 10 * torch.where(power > 1e-10, power, torch.full_like(power, 1e-10)).log10()
def db_float64(power): return 10 * torch.log10(power.double().clamp_min(1e-10))

def log_mel_einsum(wave, n_fft, hop_length, filters):
    spec = torch.stft(wave, n_fft, hop_length, window=torch.hann_window(n_fft, periodic=True), return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2
    return 10 * torch.log10(torch.einsum("mf,bft->bmt", filters, power).clamp_min(1e-10))
def log_mel_matmul(wave, n_fft, hop_length, filters):
    spec = torch.stft(wave, n_fft, hop_length, window=torch.hann_window(n_fft), center=True, pad_mode="reflect", return_complex=True)
    mel = torch.matmul(filters.unsqueeze(0), spec.abs().pow(2))
    return 10 * torch.log10(torch.clamp(mel, min=1e-10))
def log_mel_per_clip(wave, n_fft, hop_length, filters):
    out = []
    for w in wave:                                                       # one clip at a time
        spec = torch.stft(w, n_fft, hop_length, window=torch.hann_window(n_fft), return_complex=True)
        out.append(10 * torch.log10((filters @ spec.abs() ** 2).clamp_min(1e-10)))
    return torch.stack(out)

# -- lab 2 ---------------------------------------------------------------------------------------
def sim_einsum(a, t, log_scale):
    return torch.exp(log_scale) * torch.einsum("id,jd->ij", F.normalize(a, dim=1), F.normalize(t, dim=1))
def sim_cosine_similarity(a, t, log_scale): return log_scale.exp() * F.cosine_similarity(a[:, None, :], t[None, :, :], dim=-1)
def sim_by_hand(a, t, log_scale):
    a = a / a.norm(dim=1, keepdim=True)
    t = t / torch.sqrt((t ** 2).sum(dim=1, keepdim=True))
    return torch.mm(a, t.t()).mul(log_scale.exp())
def sim_float64(a, t, log_scale): return log_scale.double().exp() * F.normalize(a.double(), dim=-1) @ F.normalize(t.double(), dim=-1).T
def sim_linear(a, t, log_scale): return F.linear(F.normalize(a, dim=-1), F.normalize(t, dim=-1)) * log_scale.exp()
def sim_divide_by_temperature(a, t, log_scale):
    return torch.matmul(F.normalize(a), F.normalize(t).T) / torch.exp(-log_scale)    # tau = exp(-log_scale)
def sim_linalg_norm(a, t, log_scale):
    scale = torch.exp(log_scale)
    return scale * torch.matmul(a / torch.linalg.norm(a, dim=1, keepdim=True), (t / torch.linalg.norm(t, dim=1, keepdim=True)).transpose(0, 1))

def probs_functional(logits): return F.softmax(logits, dim=-1)
def probs_method(logits): return logits.softmax(1)
def probs_max_subtracted(logits):
    e = (logits - logits.max(dim=1, keepdim=True).values).exp()
    return e / e.sum(dim=1, keepdim=True)
def probs_global_max(logits): e = torch.exp(logits - logits.max()); return e / e.sum(1, keepdim=True)
def probs_logsumexp(logits): return torch.exp(logits - torch.logsumexp(logits, dim=1, keepdim=True))
def probs_module(logits): return torch.nn.Softmax(dim=1)(logits)
def probs_row_by_row(logits):
    probs = torch.zeros_like(logits)
    for i in range(logits.shape[0]): probs[i] = torch.softmax(logits[i], dim=0)
    return probs
def probs_float64(logits): return F.softmax(logits, dim=1, dtype=torch.float64)

def _sim(a, t, log_scale): return log_scale.exp() * F.normalize(a, dim=-1) @ F.normalize(t, dim=-1).T
def loss_cross_entropy(a, t, log_scale):
    logits = _sim(a, t, log_scale); labels = torch.arange(logits.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
def loss_logsumexp(a, t, log_scale):
    logits = _sim(a, t, log_scale); d = logits.diagonal()
    return 0.5 * ((logits.logsumexp(1) - d).mean() + (logits.logsumexp(0) - d).mean())
def loss_nll(a, t, log_scale):
    logits = _sim(a, t, log_scale); y = torch.arange(len(a))
    return 0.5 * (F.nll_loss(F.log_softmax(logits, 1), y) + F.nll_loss(F.log_softmax(logits.T, 1), y))
def loss_log_of_softmax_diagonal(a, t, log_scale):                # fine here: the diagonal of a softmax never underflows in these batches
    logits = _sim(a, t, log_scale)
    return -0.5 * (torch.log(torch.softmax(logits, 1).diag()).mean() + torch.log(torch.softmax(logits, 0).diag()).mean())
def loss_float64(a, t, log_scale): return loss_cross_entropy(a.double(), t.double(), log_scale.double())
def loss_probability_targets(a, t, log_scale):
    logits = _sim(a, t, log_scale); eye = torch.eye(len(a))
    return 0.5 * (F.cross_entropy(logits, eye) + F.cross_entropy(logits.T, eye))
def loss_from_probabilities(a, t, log_scale):                     # through the two earlier exercises' ideas
    logits = _sim(a, t, log_scale)
    p_text, p_audio = torch.softmax(logits, dim=1), torch.softmax(logits.T, dim=1)
    return -0.5 * (torch.log(p_text.diagonal()).mean() + torch.log(p_audio.diagonal()).mean())
def loss_max_subtracted(a, t, log_scale):
    logits = _sim(a, t, log_scale)
    rows = logits - logits.max(dim=1, keepdim=True).values
    cols = logits - logits.max(dim=0, keepdim=True).values
    l_t = -(rows.diagonal() - rows.exp().sum(1).log()).mean()
    l_a = -(cols.diagonal() - cols.exp().sum(0).log()).mean()
    return (l_t + l_a) / 2
def loss_module(a, t, log_scale):
    ce = torch.nn.CrossEntropyLoss(); logits = _sim(a, t, log_scale); labels = torch.arange(len(a), dtype=torch.long)
    return (ce(logits, labels) + ce(logits.T, labels)) / 2
def loss_einsum(a, t, log_scale):
    logits = torch.exp(log_scale) * torch.einsum("nd,md->nm", F.normalize(a, dim=-1), F.normalize(t, dim=-1))
    y = torch.arange(len(a))
    return torch.stack([F.cross_entropy(logits, y), F.cross_entropy(logits.T, y)]).mean()

# -- lab 3 ---------------------------------------------------------------------------------------
def last_count_nonzero(mask): return torch.count_nonzero(mask, dim=1) - 1
def last_cumsum_argmax(mask): return mask.cumsum(dim=1).argmax(dim=1)
def last_flip(mask): return mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)
def last_loop(mask): return torch.tensor([int(row.sum()) - 1 for row in mask])
def last_int32(mask): return (mask.sum(-1) - 1).int()
def last_positions_max(mask): return (mask * torch.arange(mask.shape[1])).max(dim=1).values
def last_nonzero(mask): return torch.stack([row.nonzero().max() for row in mask])

def pool_gather(hidden, mask):
    idx = (mask.sum(1) - 1).view(-1, 1, 1).expand(-1, 1, hidden.size(-1))
    return torch.gather(hidden, 1, idx).squeeze(1)
def pool_loop(hidden, mask): return torch.stack([hidden[i, int(mask[i].sum()) - 1] for i in range(hidden.shape[0])])
def pool_range(hidden, mask): return hidden[range(hidden.shape[0]), mask.sum(dim=1) - 1, :]
def pool_one_hot(hidden, mask):
    pick = F.one_hot(mask.sum(1) - 1, hidden.shape[1]).to(hidden.dtype)
    return torch.einsum("bl,blh->bh", pick, hidden)
def pool_float64(hidden, mask): return hidden.double()[torch.arange(len(hidden)), mask.sum(1) - 1]
def pool_index_select(hidden, mask):
    flat = hidden.reshape(-1, hidden.shape[-1])                          # (batch * length, hidden)
    return flat.index_select(0, torch.arange(len(hidden)) * hidden.shape[1] + mask.sum(1) - 1)

# -- lab 4 ---------------------------------------------------------------------------------------
def classes_sum(e): return F.normalize(F.normalize(e, dim=2).sum(dim=0), dim=1)         # a sum points the same way as a mean
def classes_by_hand(e):
    u = e / e.norm(dim=-1, keepdim=True); m = u.mean(0)
    return m / m.norm(dim=-1, keepdim=True)
def classes_loop(e): return torch.stack([F.normalize(F.normalize(e[:, c], dim=-1).mean(0), dim=0) for c in range(e.shape[1])])

def zs_cosine_similarity(a, c, s): return F.softmax(s * F.cosine_similarity(a[:, None], c[None], dim=-1), dim=-1)
def zs_method(a, c, s): return (s * F.normalize(a, dim=-1) @ F.normalize(c, dim=-1).T).softmax(-1)
def zs_max_subtracted(a, c, s):
    l = s * F.normalize(a, dim=-1) @ F.normalize(c, dim=-1).T
    e = (l - l.amax(1, keepdim=True)).exp(); return e / e.sum(1, keepdim=True)
def zs_float64(a, c, s): return torch.softmax(s * F.normalize(a.double(), dim=-1) @ F.normalize(c.double(), dim=-1).T, dim=1)

# -- lab 5 ---------------------------------------------------------------------------------------
def soft_order_swapped(e, beta, s):
    u = F.normalize(e, dim=-1)
    return beta * F.softmax(s * u @ u.T, dim=-1) + (1 - beta) * torch.eye(e.shape[0], dtype=e.dtype)
def soft_diag(e, beta, s):
    c = F.cosine_similarity(e[:, None], e[None], dim=-1)
    return torch.diag(torch.full((len(e),), 1.0 - beta)) + beta * torch.softmax(s * c, dim=1)
def soft_max_subtracted(e, beta, s):
    u = e / e.norm(dim=1, keepdim=True); l = s * u @ u.T
    x = torch.exp(l - l.max(dim=1, keepdim=True).values)
    return (1 - beta) * torch.eye(len(e)) + beta * x / x.sum(dim=1, keepdim=True)

def sce_sum_mean(l, y): return torch.mean(torch.sum(-y * F.log_softmax(l, dim=-1), dim=-1))
def sce_cross_entropy(l, y): return F.cross_entropy(l, y)                                # probabilities as targets
def sce_logsumexp(l, y): return -(y * (l - l.logsumexp(dim=1, keepdim=True))).sum(1).mean()
def sce_eps(l, y): return -(y * torch.log(torch.softmax(l, dim=1) + 1e-12)).sum(dim=1).mean()
def sce_float64(l, y): return -(y.double() * torch.log_softmax(l.double(), dim=1)).sum(1).mean()

# -- lab 6 ---------------------------------------------------------------------------------------
def order_tuple(c):
    for k in (", and then ", " followed by ", " before ", " after "):
        if k in c:
            a, b = c.split(k)
            return (b, a) if k == " after " else (a, b)
def order_regex(c):
    a, k, b = re.split(r",? (followed by|and then|before|after) ", c, maxsplit=1)
    return [b, a] if k == "after" else [a, b]
def order_partition(c):
    for k in (" after ", " before ", " followed by ", ", and then "):
        a, found, b = c.partition(k)
        if found: return [b, a] if k == " after " else [a, b]
def order_find_spaced(c):
    for k in (" after ", " before ", " followed by ", ", and then "):
        i = c.find(k)
        if i >= 0:
            a, b = c[:i], c[i + len(k):]
            return [b, a] if k == " after " else [a, b]
def order_words(c):
    words = c.replace(",", " ,").split()
    for i, w in enumerate(words):
        if w in ("after", "before", "followed", "and"):
            j = i + 2 if w in ("followed", "and") else i + 1
            a, b = " ".join(words[:i]).replace(" ,", "").strip(), " ".join(words[j:])
            return [b, a] if w == "after" else [a, b]

def neg_regex(c):
    m = re.search(r"(,? )(followed by|and then|before|after)( )", c)
    return c[m.end():] + c[m.start():m.end()] + c[:m.start()]
def neg_fstring(c):
    for k in (", and then", " followed by", " before", " after"):
        if k + " " in c:
            a, b = c.split(k + " "); return f"{b}{k} {a}"
def neg_partition(c):
    for k in (", and then ", " followed by ", " before ", " after "):
        a, found, b = c.partition(k)
        if found: return b + found + a
def neg_join(c):
    for k in (" followed by ", ", and then ", " before ", " after "):
        if k in c: return k.join(reversed(c.split(k)))

def _cos(x, y): return F.cosine_similarity(x, y, dim=-1)
def tl_cross_entropy(a, t, n, s):
    logits = s * torch.stack([_cos(a, t), _cos(a, n)], dim=1)
    return F.cross_entropy(logits, torch.zeros(a.shape[0], dtype=torch.long))
def tl_logsigmoid(a, t, n, s): return -F.logsigmoid(s * (_cos(a, t) - _cos(a, n))).mean()   # a two-way softmax is a sigmoid
def tl_softplus(a, t, n, s): return F.softplus(s * (_cos(a, n) - _cos(a, t))).mean()
def tl_logsumexp(a, t, n, s):
    pos, neg = s * _cos(a, t), s * _cos(a, n)
    return (torch.logsumexp(torch.stack([pos, neg]), dim=0) - pos).mean()
def tl_logaddexp(a, t, n, s):
    pos, neg = s * _cos(a, t), s * _cos(a, n)
    return -(pos - torch.logaddexp(pos, neg)).mean()
def tl_einsum(a, t, n, s):
    a, t, n = (F.normalize(x, dim=-1) for x in (a, t, n))
    logits = s * torch.stack([torch.einsum("nd,nd->n", a, t), torch.einsum("nd,nd->n", a, n)], -1)
    return -logits.log_softmax(-1)[:, 0].mean()

def tc_python_float(a, t, n): return 100.0 * float((_cos(a, t) > _cos(a, n)).float().mean())
def tc_count(a, t, n): return (_cos(a, t) > _cos(a, n)).sum().item() * 100 / len(a)
def tc_double(a, t, n): return (_cos(a, t) > _cos(a, n)).double().mean() * 100
def tc_numpy_mean(a, t, n): return 100 * np.mean((_cos(a, t) > _cos(a, n)).numpy())
def tc_true_division(a, t, n): return 100 * (_cos(a, t) > _cos(a, n)).sum() / len(a)

# -- lab 7 ---------------------------------------------------------------------------------------
def insert_gather(e, m, tok):
    b, L, h = e.shape
    last = (m.sum(1) - 1)[:, None]
    pos = torch.arange(L + 1)[None]
    src = torch.where(pos <= last, pos, pos - 1).clamp(max=L - 1)
    out = torch.gather(e, 1, src[..., None].expand(b, L + 1, h))
    out = torch.where((pos == last)[..., None], tok[:, None, :], out)
    return out, (pos <= last + 1).long()
def insert_list_bool_mask(e, m, tok):
    rows, masks = [], []
    for i in range(e.shape[0]):
        p = int(m[i].sum()) - 1
        rows.append(torch.cat([e[i, :p], tok[i].unsqueeze(0), e[i, p:]], dim=0))
        masks.append(torch.arange(e.shape[1] + 1) <= p + 1)
    return [torch.stack(rows), torch.stack(masks)]                       # a list and a bool mask: both work in the lab
def insert_new_zeros_float_mask(e, m, tok):
    out = e.new_zeros(e.shape[0], e.shape[1] + 1, e.shape[2])
    mask = torch.zeros(e.shape[0], e.shape[1] + 1)
    for i, n in enumerate(m.sum(1).tolist()):
        out[i, :n - 1] = e[i, :n - 1]; out[i, n - 1] = tok[i]; out[i, n:] = e[i, n - 1:]
        mask[i, :n + 1] = 1
    return out, mask

def compose_half_sum(x, u): return 0.5 * (x + u)
def compose_stack_mean(x, u): return torch.stack([x, u]).mean(dim=0)
def compose_lerp(x, u): return torch.lerp(x, u, 0.5)
def compose_methods(x, u): return x.add(u).div(2)
def compose_float64(x, u): return (x.double() + u.double()) / 2

VALID = [
    ("check_hz_to_mel", hz_to_mel_natural_log), ("check_hz_to_mel", hz_to_mel_1127), ("check_hz_to_mel", hz_to_mel_loop),
    ("check_hz_to_mel", hz_to_mel_float32), ("check_hz_to_mel", hz_to_mel_torch),
    ("check_mel_filterbank", filterbank_vectorised), ("check_mel_filterbank", filterbank_torch_float32), ("check_mel_filterbank", filterbank_loops),
    ("check_power_to_db", db_clamp), ("check_power_to_db", db_maximum), ("check_power_to_db", db_natural_log), ("check_power_to_db", db_where),
    ("check_power_to_db", db_float64),
    ("check_log_mel", log_mel_einsum), ("check_log_mel", log_mel_matmul), ("check_log_mel", log_mel_per_clip),
    ("check_similarity", sim_einsum), ("check_similarity", sim_cosine_similarity), ("check_similarity", sim_by_hand),
    ("check_similarity", sim_float64), ("check_similarity", sim_linear), ("check_similarity", sim_linalg_norm), ("check_similarity", sim_divide_by_temperature),
    ("check_caption_probabilities", probs_functional), ("check_caption_probabilities", probs_method),
    ("check_caption_probabilities", probs_max_subtracted), ("check_caption_probabilities", probs_global_max),
    ("check_caption_probabilities", probs_logsumexp), ("check_caption_probabilities", probs_module), ("check_caption_probabilities", probs_float64),
    ("check_caption_probabilities", probs_row_by_row),
    ("check_contrastive_loss", loss_cross_entropy), ("check_contrastive_loss", loss_logsumexp), ("check_contrastive_loss", loss_nll),
    ("check_contrastive_loss", loss_log_of_softmax_diagonal), ("check_contrastive_loss", loss_float64), ("check_contrastive_loss", loss_einsum),
    ("check_contrastive_loss", loss_probability_targets), ("check_contrastive_loss", loss_module),
    ("check_contrastive_loss", loss_from_probabilities), ("check_contrastive_loss", loss_max_subtracted),
    ("check_last_token_positions", last_count_nonzero), ("check_last_token_positions", last_cumsum_argmax), ("check_last_token_positions", last_flip),
    ("check_last_token_positions", last_loop), ("check_last_token_positions", last_int32), ("check_last_token_positions", last_positions_max),
    ("check_last_token_positions", last_nonzero),
    ("check_eot_pool", pool_gather), ("check_eot_pool", pool_loop), ("check_eot_pool", pool_range), ("check_eot_pool", pool_one_hot),
    ("check_eot_pool", pool_float64), ("check_eot_pool", pool_index_select),
    ("check_class_embeddings", classes_sum), ("check_class_embeddings", classes_by_hand), ("check_class_embeddings", classes_loop),
    ("check_zero_shot_probabilities", zs_cosine_similarity), ("check_zero_shot_probabilities", zs_method),
    ("check_zero_shot_probabilities", zs_max_subtracted), ("check_zero_shot_probabilities", zs_float64),
    ("check_soft_targets", soft_order_swapped), ("check_soft_targets", soft_diag), ("check_soft_targets", soft_max_subtracted),
    ("check_soft_cross_entropy", sce_sum_mean), ("check_soft_cross_entropy", sce_cross_entropy), ("check_soft_cross_entropy", sce_logsumexp),
    ("check_soft_cross_entropy", sce_eps), ("check_soft_cross_entropy", sce_float64),
    ("check_events_in_time_order", order_tuple), ("check_events_in_time_order", order_regex), ("check_events_in_time_order", order_partition),
    ("check_events_in_time_order", order_words), ("check_events_in_time_order", order_find_spaced),
    ("check_negative_caption", neg_regex), ("check_negative_caption", neg_fstring), ("check_negative_caption", neg_join), ("check_negative_caption", neg_partition),
    ("check_temporal_loss", tl_cross_entropy), ("check_temporal_loss", tl_logsigmoid), ("check_temporal_loss", tl_softplus),
    ("check_temporal_loss", tl_logsumexp), ("check_temporal_loss", tl_einsum), ("check_temporal_loss", tl_logaddexp),
    ("check_t_classify", tc_python_float), ("check_t_classify", tc_count), ("check_t_classify", tc_double), ("check_t_classify", tc_numpy_mean), ("check_t_classify", tc_true_division),
    ("check_insert_before_eot", insert_gather), ("check_insert_before_eot", insert_list_bool_mask),
    ("check_insert_before_eot", insert_new_zeros_float_mask),
    ("check_compose_audio", compose_half_sum), ("check_compose_audio", compose_stack_mean), ("check_compose_audio", compose_lerp),
    ("check_compose_audio", compose_methods), ("check_compose_audio", compose_float64),
]
