"""Embedding a folder: clips/s of `clapbook embed DIR` against the loop a user of transformers would write
(`ClapFeatureExtractor` + `ClapModel.get_audio_features`), the same weights, the same 2,000 files.

    python benchmarks/embed_folder.py            # 2,000 files of 5 s at 48 kHz
    python benchmarks/embed_folder.py --quick    # smoke test: 40 files

The model is an HTS-AT with the published input (a 256 x 256 spectrogram image, patches of 4, windows of 8) at a
reduced width and depth (`patch_embeds_hidden_size=32, hidden_size=256, depths=[2, 2, 2, 2]`: 2.7M audio parameters
against HTSAT-tiny's 28M) with random weights (speed does not depend on their values), saved as a Hugging Face
folder. The published size costs about 6x more per clip in the model alone, which on a shared 2-core CPU puts
2,000 files out of reach of one run; `benchmarks/embed_throughput.py` times the published size on a few clips.
clapbook reads that folder as `--checkpoint` (converted once into clapbook's cache, chapter 16; the conversion is
done before the timing, as it is on every call after a user's first). The files are 5 s of noise at 48 kHz, 16-bit
WAV, so both sides repeat-pad them to the 10 s window the same way and no resampling happens.

Each side runs in its own process, end to end, as a user runs it: start, load the model, read every file, embed,
write a Parquet file with a `file` and an `embedding` column. clips/s = files / wall seconds of that process. The
sides run alternately `--repeats` times (the best of each is kept) so that load from other users of the machine
falls on both; the load average is recorded. The two Parquet files are compared (max abs difference of the
normalised embeddings) before anything is written.

Writes benchmarks/results/embed_folder.json (command, machine, load, date) through `clapbook.files.write_json`.
"""
import argparse, os, subprocess, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from record import header  # noqa: E402  (the provenance header every benchmark writes)

TRANSFORMERS_LOOP = '''
import sys
from pathlib import Path
import pandas as pd, soundfile as sf, torch
from transformers import ClapFeatureExtractor, ClapModel
folder, data, out, batch = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
model, fe = ClapModel.from_pretrained(folder).eval(), ClapFeatureExtractor.from_pretrained(folder)
files = sorted(str(p) for p in data.rglob("*.wav"))
embeddings = []
for i in range(0, len(files), batch):
    waves = [sf.read(f, dtype="float32")[0] for f in files[i:i + batch]]          # 48 kHz mono: no resampling needed
    inputs = fe(waves, sampling_rate=48000, return_tensors="pt")
    with torch.inference_mode():
        embeddings += list(model.get_audio_features(**inputs).pooler_output.numpy())
pd.DataFrame({"file": files, "embedding": embeddings}).to_parquet(out)
'''


def build(work: Path) -> Path:
    "An HTS-AT ClapModel (published input, reduced width and depth) with random weights, saved as a Hugging Face folder (with tokenizer and feature extractor)."
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel
    from clapbook.text import load_roberta_tokenizer
    folder = work / "hf-htsat-reduced"
    if (folder / "model.safetensors").is_file(): return folder
    tok = load_roberta_tokenizer()
    torch.manual_seed(0)
    text = dict(vocab_size=len(tok), hidden_size=64, num_hidden_layers=1, num_attention_heads=1, intermediate_size=128,
                max_position_embeddings=80, pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    audio = dict(enable_fusion=False, patch_embeds_hidden_size=32, hidden_size=256, depths=[2, 2, 2, 2], num_attention_heads=[1, 2, 4, 8])
    hf = ClapModel(ClapConfig(text_config=text, audio_config=audio)).eval()
    with torch.no_grad():
        bn = hf.audio_model.audio_encoder.batch_norm
        bn.running_mean.normal_(-40, 10); bn.running_var.uniform_(50, 200)
    hf.save_pretrained(folder); tok.save_pretrained(folder)
    ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad", frequency_min=50, frequency_max=14000).save_pretrained(folder)
    return folder


def make_files(work: Path, n: int, seconds: float = 5.0) -> Path:
    "n WAV files of `seconds` of noise at 48 kHz in a folder tree (100 per subfolder)."
    import soundfile as sf
    data = work / f"files-{n}"
    if len(list(data.rglob("*.wav"))) >= n: return data
    g = np.random.default_rng(0)
    for i in range(n):
        p = data / f"part{i // 100:02d}" / f"clip{i:05d}.wav"; p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, (0.1 * g.standard_normal(int(48000 * seconds))).astype(np.float32), 48000, subtype="PCM_16")
    return data


def timed(cmd, env) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode != 0: raise SystemExit(f"{cmd[:4]} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 files, one repeat (smoke test)")
    ap.add_argument("--files", type=int, default=2000); ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "clapbook-bench-embed-folder"))
    ap.add_argument("--out", default=None, help="results file (default benchmarks/results/embed_folder.json; --quick: in --work)")
    args = ap.parse_args(argv)
    n, repeats = (40, 1) if args.quick else (args.files, args.repeats)
    head = header(argv)                                                    # the code as it is when the run starts
    work = Path(args.work); work.mkdir(parents=True, exist_ok=True)
    out_file = Path(args.out) if args.out else (work / "embed_folder-quick.json" if args.quick else ROOT / "benchmarks" / "results" / "embed_folder.json")
    folder, data = build(work), make_files(work, n)
    env = {**os.environ, "CLAPBOOK_CACHE": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    ours = [sys.executable, "-m", "clapbook.cli", "embed", "--checkpoint", str(folder), "--batch-size", str(args.batch_size), "--quiet"]
    timed(ours + ["--out", str(work / "warm.parquet"), str(data / "part00" / "clip00000.wav")], env)   # converts once, untimed
    theirs = [sys.executable, "-c", TRANSFORMERS_LOOP, str(folder), str(data), str(work / "transformers.parquet"), str(args.batch_size)]
    ours += ["--out", str(work / "clapbook.parquet"), str(data)]
    walls, loads = {"transformers": [], "clapbook": []}, []
    for r in range(repeats):
        for name, cmd in (("transformers", theirs), ("clapbook", ours)):
            loads.append([round(x, 2) for x in os.getloadavg()])
            walls[name].append(timed(cmd, env)); print(f"round {r}: {name} {n / walls[name][-1]:.2f} clips/s ({walls[name][-1]:.0f} s)")
    loads.append([round(x, 2) for x in os.getloadavg()])
    import pandas as pd
    a, b = (pd.read_parquet(work / f).sort_values("file") for f in ("transformers.parquet", "clapbook.parquet"))
    assert list(a["file"]) == list(b["file"]) and len(a) == n
    diff = float(np.abs(np.stack(a["embedding"]) - np.stack(b["embedding"])).max())
    rate = {k: n / min(v) for k, v in walls.items()}
    ratio = rate["clapbook"] / rate["transformers"]
    print(f"\n| {n:,} files of 5 s, 48 kHz, HTS-AT (reduced), batch {args.batch_size} | clips/s | wall (s) |\n|---|---|---|")
    for k in ("transformers", "clapbook"): print(f"| {k} | {rate[k]:.2f} | {min(walls[k]):.0f} |")
    print(f"ratio clapbook / transformers: {ratio:.2f}x; embeddings equal to {diff:.1e} (max abs difference)")
    from clapbook.files import write_json
    result = {"benchmark": "embed_folder", **head, "load_average": loads, "quick": args.quick, "files": n,
              "clip_seconds": 5.0, "sample_rate": 48000, "batch_size": args.batch_size, "model": "HTS-AT, published input (spec 256, patch 4, window 8), patch_embeds_hidden_size 32, hidden_size 256, depths 2-2-2-2; random weights",
              "wall_seconds": walls, "clips_per_s": rate, "ratio_clapbook_over_transformers": ratio, "max_abs_difference": diff}
    print(f"wrote {write_json(out_file, result)}")
    return result


if __name__ == "__main__":
    main()
