"""Named config presets: flat dotted-key overrides on top of ``Config()``.

Presets are data (like a sweep's search space), so the CLI, the sweeps and the tests share them.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "dsprites": {
        "description": "procedural dSprites 64 px, InfoGAN-CR's latent layout, half width, 1,500 steps, "
                       "vote-based metrics at 1/10 of the standard votes (a CPU-sized budget)",
        "overrides": {
            "model.width": 0.5, "train.steps": 1500, "train.eval_every": 500, "train.checkpoint_every": 500,
            "eval.num_votes_train": 1000, "eval.num_votes_eval": 500, "eval.fid_samples": 5000,
        },
    },
    "dsprites-quick": {
        "description": "dSprites at 32 px, half width, 300 steps, small metric sizes: a minute-scale run",
        "overrides": {
            "model.image_size": 32, "model.width": 0.5, "train.steps": 300,
            "train.eval_every": 100, "train.checkpoint_every": 100, "data.eval_size": 500,
            "eval.num_points": 2000, "eval.num_test": 1000, "eval.num_votes_train": 500,
            "eval.num_votes_eval": 250, "eval.fid_samples": 1000,
        },
    },
    "digits": {
        "description": "sklearn digits at 28 px with the paper's MNIST layout (62 noise + Cat(10) + 2 cont)",
        "overrides": {
            "data.name": "digits", "model.image_size": 28, "model.width": 0.5,
            "codes.noise_dim": 62, "codes.categorical": (10,), "codes.n_continuous": 2,
            "loss.lambda_cat": 1.0, "loss.lambda_cont": 0.1,
            "optim.lr_d": 2e-4, "optim.lr_g": 1e-3, "optim.lr_q": 2e-4,
            "train.steps": 4000, "train.batch_size": 64, "train.eval_every": 500, "train.checkpoint_every": 500,
            "data.eval_size": 1797,
        },
    },
}
