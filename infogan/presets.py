"""Named config presets: flat dotted-key overrides on top of ``Config()``.

Presets are data (like a sweep's search space), so the CLI, the sweeps and the tests share them.
Training presets are the published recipes (the settings were read from the official code:
fjxmlzn/InfoGAN-CR and openai/InfoGAN; see docs/ARCHITECTURE.md) with a CPU-sized budget;
``eval-*`` presets set only ``eval.*`` keys, so they stack on any training preset
(``--preset dsprites --preset eval-infogan-cr``).
"""

from __future__ import annotations

from typing import Any

from infogan import speeds

# InfoGAN-CR's "InfoGAN (modified)" on dSprites is the embedded default (``Config()``): 5
# Unif(-1, 1) codes + 5 noise dims, Q's std fixed at 1, lambda 0.05 in the D+Q and the G loss,
# spectral norm on every D/Q layer and no batch norm in D, leaky ReLU 0.2, Adam(0.5, 0.999) with
# lr G 1e-3 / D+Q 2e-3, two G steps per D step on the D step's latent batch, batch 64, 64 px, the
# networks on pixels in [0, 1] with a sigmoid G whose hidden blocks are activation -> batch norm
# (leaky ReLU 0.2 after its deconvolutions), fp32. Only the budget differs: the
# paper trains 288k iterations, a 2-core CPU does about 3 (64 px) or 7 (32 px) per second.
_DSPRITES_BUDGET = {"train.eval_every": 1000, "train.checkpoint_every": 1000}

# The official InfoGAN MNIST code (openai/InfoGAN, launchers/run_mnist_exp.py): the paper's
# full-width networks with batch norm in D and Q, leaky ReLU 0.01 (its leaky_rectify default),
# 62 Unif(-1, 1) noise dims + Cat(10) + 2 Unif(-1, 1) codes, lambda 1 for every code with Q's
# std fixed at 1, the MI term in D's and G's losses (Q is trained by D's optimiser at D's rate),
# Adam beta1 0.5, lr D 2e-4 / G 1e-3, batch 128, 5,000 updates (50 epochs x 100), pixels in [0, 1]
# with a sigmoid (its MeanBernoulli output), G's blocks batch norm -> ReLU, and a fresh latent
# batch for the G update (its graph samples one per update).
_OFFICIAL_MNIST = {
    "model.image_size": 28, "model.arch": "mnist", "model.width": 1.0, "model.d_norm": "batch", "model.leak": 0.01,
    "model.output": "sigmoid", "model.g_blocks": "bn_act",
    "codes.noise_dim": 62, "codes.categorical": (10,), "codes.n_continuous": 2, "codes.noise_dist": "uniform",
    "loss.lambda_cat": 1.0, "loss.lambda_cont": 1.0, "loss.q_std": "fixed", "loss.q_update": "with_d",
    "optim.lr_d": 2e-4, "optim.lr_q": 2e-4, "optim.lr_g": 1e-3, "optim.beta1": 0.5,
    "train.batch_size": 128, "train.g_steps": 1, "train.g_latent": "fresh", "train.steps": 5000,
    "train.eval_every": 500, "train.checkpoint_every": 500,
}

# Evaluation protocols. "dlib" is disentanglement_lib's standard sizes (the EvalConfig defaults,
# spelled out); "infogan-cr" is InfoGAN-CR's published protocol (its gan/metric.py): MIG on
# 73,728 real images with 20 bins, FactorVAE from 500 groups of 100 images scored on those same
# votes (our ``eval/factor_vae_train``; ours also prunes collapsed codes, as dlib does), and DCI
# with dlib's gradient boosting, so DCI compares with the published table.
_DLIB_EVAL = {
    "eval.num_points": 10_000, "eval.num_test": 5_000, "eval.num_votes_train": 10_000, "eval.num_votes_eval": 5_000,
    "eval.vote_batch": 64, "eval.fid_samples": 10_000, "eval.dci_model": "forest", "eval.mig_points": 0,
}

_INFOGAN_CR_EVAL = {**_DLIB_EVAL, "eval.mig_points": 73_728, "eval.num_votes_train": 500, "eval.num_votes_eval": 500,
                    "eval.vote_batch": 100, "eval.dci_model": "gradient_boosting"}

# InfoGAN-CR's table as one run (fjxmlzn/InfoGAN-CR): 28 epochs of dSprites' 737,280 images at
# batch 64 = 322,560 iterations, the contrastive regulariser (weight 2, a fresh classifier) from
# iteration 288,000 on. Its checkpoint 288,000 is the published "InfoGAN (modified)" row, the last
# one the "InfoGAN-CR" row: both are evaluated with the full published protocol (the loop's full
# evaluations, ``infogan.loop.full_evaluation_steps``), and MIG, FactorVAE and FID by the same protocol at
# 1k, 2k, 4k, ... steps for the curve.
PAPER_STEPS, PAPER_CR_START = 322_560, 288_000

PRESETS: dict[str, dict[str, Any]] = {
    "eval-quick": {
        "description": "evaluation sizes for monitoring a CPU run: 5,000 points, 500/250 votes, 1,000 FID samples",
        "overrides": {"eval.num_points": 5000, "eval.mig_points": 0, "eval.num_test": 1000, "eval.num_votes_train": 500,
                      "eval.num_votes_eval": 250, "eval.vote_batch": 64, "eval.fid_samples": 1000},
    },
    "eval-dlib": {
        "description": "disentanglement_lib's standard metric sizes (10,000 points, 10,000/5,000 votes of 64)",
        "overrides": _DLIB_EVAL,
    },
    "eval-infogan-cr": {
        "description": "InfoGAN-CR's published protocol: MIG on 73,728 images, FactorVAE 500 groups x 100, "
                       "DCI with dlib's gradient boosting (slow)",
        "overrides": _INFOGAN_CR_EVAL,
    },
    "paper": {
        "description": "InfoGAN-CR's published protocol as one run, 64 px: 288,000 steps of the recipe, then "
                       "34,560 with the contrastive regulariser (weight 2, a fresh classifier); the full "
                       "eval-infogan-cr suite at steps 288,000 and 322,560 (both rows of the table), MIG/FactorVAE/"
                       "FID at 1k, 2k, 4k, ... steps (a GPU run: "
                       + speeds.describe(PAPER_STEPS, speeds.H200_DSPRITES_ALONE) + ")",
        "overrides": {
            "train.steps": PAPER_STEPS, "loss.lambda_cr": 2.0, "loss.cr_start": PAPER_CR_START,
            "train.eval_every": 1000, "train.eval_schedule": "log", "train.checkpoint_every": 16_000, **_INFOGAN_CR_EVAL,
            "eval.intermediate": "mig,factor_vae,fid", "eval.intermediate_points": 73_728,
        },
    },
    "dsprites": {
        "description": "InfoGAN-CR's 'InfoGAN (modified)' recipe on procedural dSprites, 64 px, "
                       "8,000 steps (~50 min on one CPU core)",
        "overrides": {"train.steps": 8000, **_DSPRITES_BUDGET},
    },
    "dsprites-32": {
        "description": "the same recipe at 32 px (three convs in D, three deconvs in G), 20,000 steps",
        "overrides": {"model.image_size": 32, "train.steps": 20000, **_DSPRITES_BUDGET},
    },
    "dsprites-cr": {
        "description": "InfoGAN-CR on procedural dSprites, 64 px: the recipe plus the contrastive "
                       "regulariser (weight 2, its classifier trained from the last tenth of the "
                       "steps on, as the paper switches it on at 288k of 322k iterations)",
        "overrides": {"train.steps": 8000, "loss.lambda_cr": 2.0, "loss.cr_start": 7200, **_DSPRITES_BUDGET},
    },
    "dsprites-quick": {
        "description": "the dSprites recipe at 32 px and half width, 300 steps, small metric sizes: a minute-scale run",
        "overrides": {
            "model.image_size": 32, "model.width": 0.5, "train.steps": 300,
            "train.eval_every": 100, "train.checkpoint_every": 100, "data.eval_size": 500,
            "eval.num_points": 2000, "eval.num_test": 1000, "eval.num_votes_train": 500,
            "eval.num_votes_eval": 250, "eval.fid_samples": 1000,
        },
    },
    "digits": {
        "description": "the official InfoGAN MNIST recipe on sklearn's bundled digits (8x8 upscaled to 28 px)",
        "overrides": {"data.name": "digits", "data.eval_size": 1797, **_OFFICIAL_MNIST},
    },
    "mnist": {
        "description": "the official InfoGAN MNIST recipe on MNIST IDX files under --data.root "
                       "(<root>/MNIST/raw/; --data.download true fetches them)",
        "overrides": {"data.name": "mnist", "data.eval_size": 10000, **_OFFICIAL_MNIST},
    },
}


def is_eval_preset(name: str) -> bool:
    """Whether a preset only sets evaluation keys (it may then be applied to a saved run)."""
    return all(key.startswith("eval.") for key in PRESETS[name]["overrides"])
