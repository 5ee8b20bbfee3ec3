"""Shared test set-up."""

import os

import torch

# Two cores: xdist runs two workers; give each one thread so they do not fight.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
