"""InfoGAN training library: configs, networks, losses, data, the training loop and its metrics.

Submodules are imported explicitly (``from infogan.loop import train``,
``from infogan.config import Config``); importing this package loads nothing else, so
``import infogan`` stays cheap and never pulls in torch, Ray, Optuna or MLflow.
"""
