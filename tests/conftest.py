"""Shared pytest setup.

Under pytest-xdist (`pytest -n 2`) every worker runs torch, and two workers with two
OpenMP threads each on a 2-core machine spin against each other (a training step becomes
several times slower). So each worker, and every notebook subprocess it starts, uses one
thread. Tests never download: the Hugging Face libraries are put in offline mode.
"""
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# umap-learn's numba functions compile on first use (10-20 s); one cache for every process
# (the widgets chapter, tests/test_widgets.py and the Voila kernel of tests/test_browser.py)
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "clapbook-numba"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)
