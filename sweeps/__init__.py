"""The sweep platform: Optuna search spaces, the Ray Tune trainable, MLflow tracking and the CLIs.

Ray, Optuna and MLflow are imported only here (never in ``infogan/``), and only inside the
modules that need them, so ``import sweeps`` itself has no side effects.
"""
