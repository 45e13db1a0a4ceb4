"""Learn, run and extend CLAP (Contrastive Language-Audio Pretraining): a literate book and a library.

Modules:

- `clapbook.audio_encoders`: The audio tower $f_a$ of CLAP: two published architectures, built from scratch with the parameter names of the published checkpoints.
- `clapbook.cli`: Everything the book builds, from a terminal: make the data, train, evaluate, embed, classify zero-shot, and the one-command quickstart.
- `clapbook.model`: A front end, an audio encoder, a text encoder, two projections into one joint space and a learnable temperature.
- `clapbook.train`: One loop for the CPU and the GPU: mixed precision, accumulation, clipping, paper 1's schedule, validation by zero-shot accuracy, atomic checkpoints and exact resume."""

__version__ = "0.1.0"
