"""Front-end throughput: clapbook's LogMel (batched) vs librosa (per clip) vs Hugging Face
`ClapFeatureExtractor` (rand_trunc) vs torchaudio's MelSpectrogram (batched), on the same clips.

    python benchmarks/frontend.py                  # 32 clips of 10 s, CPU
    python benchmarks/frontend.py --device cuda    # LogMel and torchaudio on the GPU

All use LAION-CLAP's front end (48 kHz, window 1024, hop 480, 64 Slaney mels, 50-14000 Hz) so
that they compute the same thing; a second table uses paper 1's preset (44.1 kHz, hop 320,
50-8000 Hz) where the Hugging Face extractor does not apply. Prints clips/s and ratios; the
best of `--repeats` timed runs after one warm-up. Writes benchmarks/results/frontend.json.
"""
import argparse, time

import numpy as np
import torch
import torchaudio

from clapbook.audio import FRONTENDS, LogMel
from record import save_results


def best_time(fn, repeats, sync=lambda: None):
    fn(); sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-save", action="store_true", help="print only; do not write benchmarks/results/frontend.json")
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}; "
          f"{args.clips} clips of {args.seconds:g} s\n")

    import librosa
    from transformers import ClapFeatureExtractor

    presets = {}
    for preset in ("laion", "msclap"):
        fe = FRONTENDS[preset]
        n = int(fe.sample_rate * args.seconds)
        x = 0.1 * torch.randn(args.clips, n, generator=torch.Generator().manual_seed(0))
        xn = [c.numpy() for c in x]
        xd = x.to(dev)
        ours = LogMel.from_preset(preset).to(dev)
        ta = torchaudio.transforms.MelSpectrogram(fe.sample_rate, n_fft=fe.n_fft, hop_length=fe.hop_length,
                                                  n_mels=fe.n_mels, f_min=fe.f_min, f_max=fe.f_max,
                                                  norm="slaney", mel_scale="slaney").to(dev)

        def run_ours(): ours(xd)
        def run_ta(): 10 * torch.log10(ta(xd).clamp_min(1e-10))
        def run_librosa():
            for c in xn:
                librosa.power_to_db(librosa.feature.melspectrogram(
                    y=c, sr=fe.sample_rate, n_fft=fe.n_fft, hop_length=fe.hop_length, n_mels=fe.n_mels,
                    fmin=fe.f_min, fmax=fe.f_max, power=2.0, center=True, pad_mode="reflect"), top_db=None)
        rows = [("clapbook LogMel (batched)", run_ours), ("torchaudio MelSpectrogram (batched)", run_ta),
                ("librosa (per clip)", run_librosa)]
        if preset == "laion":
            hf = ClapFeatureExtractor(feature_size=fe.n_mels, sampling_rate=fe.sample_rate, hop_length=fe.hop_length,
                                      fft_window_size=fe.n_fft, frequency_min=fe.f_min, frequency_max=fe.f_max,
                                      max_length_s=int(args.seconds))
            def run_hf(): hf(xn, sampling_rate=fe.sample_rate, truncation="rand_trunc", padding="repeatpad",
                             return_tensors="pt")
            rows.append(("transformers ClapFeatureExtractor", run_hf))
        print(f"preset {preset!r}: {fe.sample_rate} Hz, n_fft {fe.n_fft}, hop {fe.hop_length}, "
              f"{fe.n_mels} mels {fe.f_min:g}-{fe.f_max:g} Hz")
        rates = {}
        for name, fn in rows:
            s = best_time(fn, args.repeats, sync if "batched" in name else (lambda: None))
            rates[name] = args.clips / s
        base = rates["clapbook LogMel (batched)"]
        print(f"  {'implementation':38s} {'clips/s':>9s} {'clapbook is x faster':>21s}")
        for name, r in rates.items():
            print(f"  {name:38s} {r:9.1f} {base / r:21.2f}")
        print()
        presets[preset] = {"clips_per_s": rates, "clapbook_speedup": {k: base / r for k, r in rates.items()}}
    if not args.no_save:
        save_results("frontend", {"clips": args.clips, "seconds": args.seconds, "repeats": args.repeats,
                                  "device": str(dev), "presets": presets})


if __name__ == "__main__":
    main()
