"""Audio embedding throughput: clapbook vs Hugging Face transformers, same weights, same CPU, one run.

Both sides embed the same 10 s, 48 kHz clips with HTSAT-tiny (the published LAION / HF size,
`ClapAudioConfig()` defaults, random weights: speed does not depend on their values), front end
included: clapbook's `CLAP.embed_audio(waves)` against `ClapFeatureExtractor(waves)` followed by
`ClapModel.get_audio_features`. The two are timed alternately in this process, so load from other
users of the machine falls on both; each cell is the best of `--repeats` runs. The embeddings are
compared (max abs difference of the normalised vectors) before any timing.

    python benchmarks/embed_throughput.py            # full: batch 1 and 16, 5 repeats (a few minutes)
    python benchmarks/embed_throughput.py --quick    # smoke test: 1 repeat, batch 1 and 2
    python benchmarks/embed_throughput.py --bf16     # also clapbook under bfloat16 autocast

Writes benchmarks/results/embed_throughput.json (not with --quick). The ratios depend on the CPU:
bfloat16 pays on CPUs with AMX / avx512_bf16 and can be slower than fp32 without them.
"""
import argparse
import os
import tempfile
import time

import numpy as np
import torch

from record import save_results


def build(tmp):
    "A HTSAT-tiny ClapModel with random weights, saved and loaded back by clapbook: the same weights on both sides."
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel
    from clapbook.pretrained import load_pretrained
    from clapbook.text import load_roberta_tokenizer
    tok = load_roberta_tokenizer()
    torch.manual_seed(0)
    text = dict(vocab_size=len(tok), hidden_size=64, num_hidden_layers=1, num_attention_heads=1, intermediate_size=128,
                max_position_embeddings=80, pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
                eos_token_id=tok.sep_token_id)
    hf = ClapModel(ClapConfig(text_config=text, audio_config=dict(enable_fusion=False))).eval()
    with torch.no_grad():
        bn = hf.audio_model.audio_encoder.batch_norm
        bn.running_mean.normal_(-40, 10); bn.running_var.uniform_(50, 200)
    hf.save_pretrained(tmp); tok.save_pretrained(tmp)
    fe = ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad", frequency_min=50, frequency_max=14000)
    fe.save_pretrained(tmp)
    return hf, fe, load_pretrained(tmp, verbose=False)


def hf_embed(hf, fe, waves):
    feats = fe(waves, sampling_rate=48000, return_tensors="pt")["input_features"]
    with torch.inference_mode():
        return hf.get_audio_features(input_features=feats).pooler_output


def ours_embed(model, waves, bf16=False):
    return model.embed_audio(waves, sample_rate=48000, batch_size=len(waves), precision="bf16" if bf16 else "fp32")


def best_rate(fn, n_clips, repeats):
    "clips/s of the fastest of `repeats` calls."
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t0)
    return n_clips / best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat, batch 1 and 2 (smoke test)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--bf16", action="store_true", help="also time clapbook with precision='bf16' (bfloat16 autocast)")
    ap.add_argument("--no-save", action="store_true", help="print only; do not write benchmarks/results/embed_throughput.json")
    args = ap.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    batches = [1, 2] if args.quick else [int(b) for b in args.batches.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; best of {repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        hf, fe, model = build(tmp)
    g = np.random.default_rng(0)
    clips = [(0.1 * g.standard_normal(480000)).astype(np.float32) for _ in range(max(batches))]
    ref, ours = hf_embed(hf, fe, clips[:2]), ours_embed(model, clips[:2])
    diff = (ref - ours).abs().max().item()
    print(f"max |embedding difference| clapbook vs transformers: {diff:.1e}")
    assert diff < 1e-4, "the two sides disagree: timing them would compare different computations"
    cos = None
    if args.bf16:
        cos = torch.nn.functional.cosine_similarity(ours_embed(model, clips[:2], bf16=True), ours, dim=-1).min().item()
        print(f"bf16 autocast: min cosine to fp32 {cos:.5f}")
    rows = []
    for b in batches:
        waves = clips[:b]
        hf_embed(hf, fe, waves); ours_embed(model, waves)                 # warm-up
        r_hf = r_ours = r_bf = 0.0
        for _ in range(repeats):                                          # alternate the two sides
            r_hf = max(r_hf, best_rate(lambda: hf_embed(hf, fe, waves), b, 1))
            r_ours = max(r_ours, best_rate(lambda: ours_embed(model, waves), b, 1))
            if args.bf16: r_bf = max(r_bf, best_rate(lambda: ours_embed(model, waves, True), b, 1))
        rows.append((b, r_hf, r_ours, r_bf))
    print(f"\n| batch | transformers clips/s | clapbook clips/s | ratio |" + (" clapbook bf16 | ratio |" if args.bf16 else ""))
    print("|---|---|---|---|" + ("---|---|" if args.bf16 else ""))
    for b, r_hf, r_ours, r_bf in rows:
        extra = f" {r_bf:.2f} | {r_bf / r_hf:.2f}x |" if args.bf16 else ""
        print(f"| {b} | {r_hf:.2f} | {r_ours:.2f} | {r_ours / r_hf:.2f}x |" + extra)
    print("\nclosing note: clapbook / transformers = " + ", ".join(f"{r_o / r_h:.2f}x at batch {b}" for b, r_h, r_o, _ in rows)
          + f" (best of {repeats}, timed alternately; other processes on this machine slow both sides)")
    if not (args.quick or args.no_save):
        save_results("embed_throughput", {"repeats": repeats, "max_abs_difference": diff, "bf16_min_cosine": cos,
            "rows": [{"batch": b, "transformers_clips_per_s": r_h, "clapbook_clips_per_s": r_o, "ratio": r_o / r_h,
                      **({"clapbook_bf16_clips_per_s": r_b, "bf16_ratio": r_b / r_h} if args.bf16 else {})}
                     for b, r_h, r_o, r_b in rows]})


if __name__ == "__main__":
    main()
