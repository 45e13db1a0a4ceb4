"""Learn, run and extend CLAP (Contrastive Language-Audio Pretraining): a literate book and a library.

Modules:

- `clapbook.audio_encoders`: The audio tower $f_a$ of CLAP: two published architectures, built from scratch with the parameter names of the published checkpoints.
- `clapbook.benchmark`: Paper 1 in miniature: a dozen zero-shot tasks built from the embedded corpora (sound events, instruments, drums, pitch, loudness, counting, multi-label scenes, retrieval both ways, temporal order), one call that runs them all and returns the table and the Zero-Shot score.
- `clapbook.captioning`: Paper 1, Fig. 1 and section 2.3: "a test audio is passed to the pretrained audio encoder, then to a mapper network, and then to GPT2 to generate a description. At training time, only the weights of the mapper network are learned with a captioning loss (Eq.5) and the training split."
- `clapbook.composed`: Paper 4: unlabeled audio becomes a pseudo text token (the a2t module), is composed with a labeled caption, and is paired with the mixed audio for contrastive learning.
- `clapbook.curation`: Paper 2: a teacher CLAP pairs in-the-wild audio with captions it has never seen together (domain-unspecific, domain-specific, augmented domain-specific curation), and a student trained on those pairs with soft labels and replay beats the teacher.
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
