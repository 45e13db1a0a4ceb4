"""Reference solutions to the clapbook labs (for instructors; the lab notebooks ship without them).

Each function is the answer to the exercise cell of the same name in `labs/NN_*.ipynb`, written
the way a student would write it (NumPy and torch only, no clapbook functions).
`tests/test_labs.py` pastes each one into its lab's exercise cell and runs the notebook.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

# -- lab 1: the mel front end ------------------------------------------------------------

def hz_to_mel(f):
    "Hz -> mel, HTK scale."
    return 2595.0 * np.log10(1.0 + f / 700.0)


def mel_filterbank_htk(sample_rate, n_fft, n_mels, f_min, f_max):
    "Triangular filters (n_mels, n_fft // 2 + 1), peak 1, edges evenly spaced in HTK mels."
    mel_to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))   # n_mels + 2 edges, in Hz
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rising = (freqs - lo) / (mid - lo)
        falling = (hi - freqs) / (hi - mid)
        fb[m] = np.maximum(0, np.minimum(rising, falling))
    return fb


def power_to_db(power):
    "Power -> dB, floored at 1e-10 (-100 dB)."
    return 10 * torch.log10(power.clamp_min(1e-10))


def log_mel(wave, n_fft, hop_length, filters):
    "(batch, samples) -> (batch, n_mels, frames) log-mel in dB."
    spec = torch.stft(wave, n_fft, hop_length, window=torch.hann_window(n_fft), center=True,
                      pad_mode="reflect", return_complex=True)      # (batch, n_fft // 2 + 1, frames)
    power = spec.abs() ** 2
    return power_to_db(filters @ power)

# -- lab 2: the contrastive loss and the temperature -------------------------------------------

def similarity(audio_emb, text_emb, log_scale):
    "exp(log_scale) * cosine similarities, rows = clips."
    a = F.normalize(audio_emb, dim=-1)
    t = F.normalize(text_emb, dim=-1)
    return log_scale.exp() * a @ t.T


def caption_probabilities(logits):
    "For each clip (row), a distribution over captions."
    return torch.softmax(logits, dim=1)


def contrastive_loss(audio_emb, text_emb, log_scale):
    "Paper 1, eq. (4)."
    logits = similarity(audio_emb, text_emb, log_scale)
    target = torch.arange(len(logits))
    loss_text = -torch.log_softmax(logits, dim=1)[target, target].mean()    # each clip picks its caption
    loss_audio = -torch.log_softmax(logits, dim=0)[target, target].mean()   # each caption picks its clip
    return 0.5 * (loss_text + loss_audio)

# -- lab 3: GPT-2 end-of-text pooling ----------------------------------------------------------

def last_real_token(attention_mask):
    "Index of each row's last real token in a right-padded mask."
    return attention_mask.sum(dim=1) - 1


def eot_pool(hidden, attention_mask):
    "(batch, length, hidden) -> (batch, hidden) at the end-of-text token."
    rows = torch.arange(hidden.shape[0])
    return hidden[rows, last_real_token(attention_mask)]

# -- lab 4: zero-shot classification and prompts -----------------------------------------------

def class_embeddings(prompt_emb):
    "(K templates, C classes, d) -> (C, d), unit rows."
    unit = F.normalize(prompt_emb, dim=-1)
    return F.normalize(unit.mean(dim=0), dim=-1)


def zero_shot_probabilities(audio_emb, class_emb, logit_scale):
    "(N, C) softmax over classes of scaled cosines."
    logits = logit_scale * F.normalize(audio_emb, dim=-1) @ F.normalize(class_emb, dim=-1).T
    return logits.softmax(dim=1)

# -- lab 5: soft labels from a teacher ---------------------------------------------------------

def soft_labels(teacher_emb, beta, teacher_scale):
    "(1 - beta) * I + beta * softmax(teacher_scale * cos(teacher_i, teacher_j)), rows sum to 1."
    e = F.normalize(teacher_emb, dim=-1)
    soft = torch.softmax(teacher_scale * e @ e.T, dim=1)
    return (1 - beta) * torch.eye(len(e)) + beta * soft


def soft_cross_entropy(logits, targets):
    "mean_i -sum_j y_ij log p_ij."
    return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()

# -- lab 6: temporal negatives and T-Classify --------------------------------------------------

def events_in_time_order(caption):
    "The two event phrases of 'A <connector> B' in the order they happen."
    for connector in (", and then ", " followed by ", " before ", " after "):
        if connector in caption:
            first, second = caption.split(connector)
            return [second, first] if connector == " after " else [first, second]
    raise ValueError(f"no connector in {caption!r}")


def negative_caption(caption):
    "Same events and connector, the events swapped."
    for connector in (", and then ", " followed by ", " before ", " after "):
        if connector in caption:
            first, second = caption.split(connector)
            return second + connector + first
    raise ValueError(f"no connector in {caption!r}")


def temporal_loss(audio_emb, pos_text_emb, neg_text_emb, logit_scale):
    "Paper 3, eq. (3)."
    a = F.normalize(audio_emb, dim=-1)
    pos = (a * F.normalize(pos_text_emb, dim=-1)).sum(-1)
    neg = (a * F.normalize(neg_text_emb, dim=-1)).sum(-1)
    logits = logit_scale * torch.stack([pos, neg], dim=1)       # (N, 2), column 0 is right
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def t_classify(audio_emb, pos_text_emb, neg_text_emb):
    "Percent of clips whose positive caption scores strictly above its negative."
    pos = F.cosine_similarity(audio_emb, pos_text_emb, dim=-1)
    neg = F.cosine_similarity(audio_emb, neg_text_emb, dim=-1)
    return 100.0 * (pos > neg).float().mean()

# -- lab 7: the a2t composition ----------------------------------------------------------------

def insert_before_eot(embeds, attention_mask, token):
    "Insert token (batch, hidden) before each row's end-of-text token -> (batch, length + 1, hidden), new mask."
    batch, length, hidden = embeds.shape
    out = torch.zeros(batch, length + 1, hidden, dtype=embeds.dtype)
    last = attention_mask.sum(1) - 1
    for i in range(batch):
        p = int(last[i])
        out[i] = torch.cat([embeds[i, :p], token[i:i + 1], embeds[i, p:]])
    mask = (torch.arange(length + 1)[None] <= (last + 1)[:, None]).long()
    return out, mask


def compose_audio(labeled, unlabeled):
    "Paper 4, eq. (11)."
    return (labeled + unlabeled) / 2
