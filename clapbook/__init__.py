"""Learn, run and extend CLAP (Contrastive Language-Audio Pretraining): a literate book and a library.

Modules:

- `clapbook.audio_encoders`: The audio tower $f_a$ of CLAP: two published architectures, built from scratch with the parameter names of the published checkpoints.
- `clapbook.benchmark`: Paper 1 in miniature: a dozen zero-shot tasks built from the embedded corpora (sound events, instruments, drums, pitch, loudness, counting, multi-label scenes, retrieval both ways, temporal order), one call that runs them all and returns the table and the Zero-Shot score.
- `clapbook.captioning`: Paper 1, Fig. 1 and section 2.3: "a test audio is passed to the pretrained audio encoder, then to a mapper network, and then to GPT2 to generate a description. At training time, only the weights of the mapper network are learned with a captioning loss (Eq.5) and the training split."
- `clapbook.composed`: Paper 4: unlabeled audio becomes a pseudo text token (the a2t module), is composed with a labeled caption, and is paired with the mixed audio for contrastive learning.
- `clapbook.curation`: Paper 2: a teacher CLAP pairs in-the-wild audio with captions it has never seen together (domain-unspecific, domain-specific, augmented domain-specific curation), and a student trained on those pairs with soft labels and replay: paper 2's students beat their teacher.
- `clapbook.experiments.composed`: Pretrain a tiny CLAP per seed on source corpora, then fine-tune it on a few labeled SoundWorld pairs with plain fine-tuning, mixup, audio-composed text, shuffled tokens or concatenated captions; test retrieval both ways over seeds, with a diagnostic of the pseudo token; writes `composed.json` and `composed.md`.
- `clapbook.experiments.curation`: Paper 2's Table-3 regime at toy size: a teacher CLAP trained on a small paired set curates pairs from a large uncaptioned pool that holds the rare classes the paired set lacks (DU, DS, ADS); students continue from the teacher on each curated set, against continued training on the paired set, the same clips with their true captions (oracle) and with permuted captions (shuffled); zero-shot accuracy on 1,024 test clips; writes `curation.json` and `curation.md`.
- `clapbook.experiments.encoders`: Paper 1's Table 1 at toy size: CLAP trained with pairs of a CNN14 or HTS-AT audio encoder and a GPT-2, BERT-style or pretrained MiniLM text encoder, on the same data for the same steps, over several seeds, scored with chapter 13's zero-shot suite, with a step curve of CNN14 against HTS-AT; writes `encoders.json` and `encoders.md`.
- `clapbook.experiments.pretraining`: Paper 1's HTSAT-22 idea at toy size: the `tiny` preset's CNN14 pretrained on classification, on many questions as a captioner with a frozen text-first decoder, or on captions alone, each then the audio tower of a tiny CLAP, against a CLAP trained from scratch for the same total steps; with linear probes and the audio-usage gap; writes `pretraining.json` and `pretraining.md`.
- `clapbook.experiments.results`: One results module for every experiment: the size names, the machine and the code that ran, mean ± std over seeds, claims checked seed by seed, partial-run headers, merging of parts run side by side, and atomic JSON and Markdown writes.
- `clapbook.experiments.temporal`: Paper 3's experiment at toy size: a CLAP, the same fine-tuned with the contrastive loss only, and T-CLAP fine-tuned with L_c + λ L_t, for a CNN14 and two HTS-AT audio encoders (the published layout and one without its fold) over several seeds, scored on T-Classify by connector, event count and seam position, retrieval and zero-shot accuracy; writes `temporal.json` and `temporal.md`.
- `clapbook.model`: A front end, an audio encoder, a text encoder, two projections into one joint space and a learnable temperature.
- `clapbook.pretraining`: Paper 1's HTSAT-22 in miniature: an audio encoder, a mapper and a GPT-2 decoder trained to answer many questions about a clip in words (eq. 5), compared with the same encoder trained on classification alone, each then used as CLAP's audio tower.
- `clapbook.temporal`: Paper 3 (T-CLAP): clips of events in a row with captions in the right and the wrong order, a temporal-focused loss, and T-Classify to measure whether a model knows which came first.
- `clapbook.train`: One loop for the CPU and the GPU: mixed precision, accumulation, clipping, paper 1's schedule, validation by zero-shot accuracy, atomic checkpoints and exact resume."""

__version__ = "0.1.0"

def __getattr__(name):
    "`clapbook.zero_shot` (chapter 16), imported on first use so that `import clapbook` stays light."
    if name == "zero_shot":
        import importlib
        return importlib.import_module("clapbook.pretrained").zero_shot
    raise AttributeError(f"module 'clapbook' has no attribute {name!r}")
