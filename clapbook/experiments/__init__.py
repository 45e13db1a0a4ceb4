"""The experiments layer: one module per paper's experiment (made from its notebook in nbs/experiments/), all
writing through one results module, `clapbook.experiments.results`. Run one with `clapbook reproduce NAME`.

Written by hand: nbdev exports a package's `__init__.py` only from a notebook whose own module it is, and
nbs/experiments/00_results.ipynb exports `clapbook.experiments.results`. It imports no experiment, so
importing one experiment does not import (or depend on) the others."""

NAMES = ("temporal", "curation", "composed", "encoders", "pretraining")   # clapbook.experiments.NAME, in chapter order
