"""Learn, run and extend CLAP (Contrastive Language-Audio Pretraining): a literate book and a library.

Modules:

- `clapbook.audio_encoders`: The audio tower $f_a$ of CLAP: two published architectures, built from scratch with the parameter names of the published checkpoints.
- `clapbook.cli`: Everything the book builds, from a terminal: make the data, train, evaluate, embed, classify zero-shot, and the one-command quickstart.
- `clapbook.composed`: Paper 4: unlabeled audio becomes a pseudo text token (the a2t module), is composed with a labeled caption, and is paired with the mixed audio for contrastive learning.
- `clapbook.curation`: Paper 2: a teacher CLAP pairs in-the-wild audio with captions it has never seen together (domain-unspecific, domain-specific, augmented domain-specific curation), and a student trained on those pairs with soft labels and replay beats the teacher.
- `clapbook.model`: A front end, an audio encoder, a text encoder, two projections into one joint space and a learnable temperature.
- `clapbook.temporal`: Paper 3 (T-CLAP): clips of events in a row with captions in the right and the wrong order, a temporal-focused loss, and T-Classify to measure whether a model knows which came first.
- `clapbook.train`: One loop for the CPU and the GPU: mixed precision, accumulation, clipping, paper 1's schedule, validation by zero-shot accuracy, atomic checkpoints and exact resume."""

__version__ = "0.1.0"
