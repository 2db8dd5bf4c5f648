"""Disentanglement metrics on a ground-truth dataset, as defined by disentanglement_lib.

One module per metric, each with a pure numpy score on arrays and a sampling wrapper with the
shared signature ``compute_<metric>(representation_fn, data, rng, **sizes) -> dict[str, float]``
(standard sizes by default). Result keys:

- ``compute_mig``: ``mig``
- ``compute_factor_vae``: ``factor_vae`` (eval accuracy), ``factor_vae_train``, ``factor_vae_num_active``
- ``compute_beta_vae``: ``beta_vae`` (eval accuracy), ``beta_vae_train``
- ``compute_dci``: ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness``
  (test accuracy), ``dci_informativeness_train``
- ``compute_sap``: ``sap``
- ``compute_modularity``: ``modularity``, ``explicitness`` (test ROC-AUC), ``explicitness_train``

Importing this package registers nothing and has no side effects.
"""

from infogan.metrics.beta_vae import compute_beta_vae
from infogan.metrics.dci import compute_dci
from infogan.metrics.factor_vae import compute_factor_vae
from infogan.metrics.mig import compute_mig
from infogan.metrics.modularity import compute_modularity
from infogan.metrics.sap import compute_sap

__all__ = [
    "compute_beta_vae",
    "compute_dci",
    "compute_factor_vae",
    "compute_mig",
    "compute_modularity",
    "compute_sap",
]
