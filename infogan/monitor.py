"""The loss log of a run: per-step losses kept on the device, moved to the host once per log
interval, averaged into history rows, and checked for divergence.

A NaN/inf loss, a loss above ``train.max_loss`` or a non-finite weight ends a run as
``diverged at step N`` (``DivergedError``); the run keeps the last checkpoint written before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from infogan import losses
from infogan.metric_names import L_INFO_CAT, L_INFO_CONT, train_metric


class DivergedError(RuntimeError):
    """A loss became NaN, infinite, or larger than ``train.max_loss``, or a weight non-finite."""

    def __init__(self, step: int, detail: str):
        super().__init__(f"diverged at step {step}: {detail}")
        self.step = step


class LossLog:
    """Losses of every step since the last log, and the logged history.

    Args:
        names: the loss vector's names; ``core`` of them must always be finite, the rest (the
            CR columns) are NaN on iterations that did not compute them.
        core: how many leading names are core losses.
        entropies: the prior's ``h_cat`` / ``h_cont`` (for the L_I columns).
        max_loss: the divergence bound.
    """

    def __init__(self, names: Sequence[str], core: int, entropies: Mapping[str, float], max_loss: float):
        self.names, self.core, self.entropies, self.max_loss = tuple(names), core, dict(entropies), max_loss
        self.history: list[dict[str, float]] = []
        self._window: list[torch.Tensor] = []  # per-step loss vectors since the last log, still on device
        self._reported = 0  # history rows already handed on

    def append(self, step_losses: torch.Tensor) -> None:
        """One step's loss vector (on the device: no synchronisation here)."""
        self._window.append(step_losses)

    def flush(self, step: int) -> dict[str, float]:
        """Move the window's losses to the host; raise DivergedError at the first step that blew up.

        A NaN in a CR column means "no CR step at this iteration" (before ``loss.cr_start``), not
        a blow-up; the CR means are over the iterations that had one, and absent if none did.

        Returns:
            The new history row (the last one when the window is empty).
        """
        if not self._window:
            return self.history[-1] if self.history else {}
        stacked = torch.stack(self._window).float().cpu()  # (steps, n_losses)
        core = self.core
        bad_core = ~torch.isfinite(stacked[:, :core]) | (stacked[:, :core].abs() > self.max_loss)
        bad_cr = torch.isinf(stacked[:, core:]) | (stacked[:, core:].abs() > self.max_loss)
        bad = torch.cat([bad_core, bad_cr], dim=1).any(dim=1).nonzero()
        if len(bad):
            first = int(bad[0, 0])
            values = dict(zip(self.names, stacked[first].tolist(), strict=True))
            raise DivergedError(step - len(self._window) + first + 1,
                                f"a loss is non-finite or above train.max_loss={self.max_loss:g}: {values}")
        row = {"step": float(step), **dict(zip(self.names[:core], stacked[:, :core].mean(0).tolist(), strict=True))}
        for i, name in enumerate(self.names[core:], start=core):
            column = stacked[:, i]
            if not torch.isnan(column).all():
                row[name] = float(column.nanmean())
        row[L_INFO_CAT] = losses.mi_lower_bound(row["nll_cat"], self.entropies["h_cat"])
        row[L_INFO_CONT] = losses.mi_lower_bound(row["nll_cont"], self.entropies["h_cont"])
        self.history.append(row)
        self._window.clear()
        return row

    def last(self) -> dict[str, float]:
        """The last history row, as ``train/`` metrics."""
        row = self.history[-1] if self.history else {}
        return {train_metric(k): v for k, v in row.items() if k != "step"}

    def rows_since_report(self, step: int) -> list[dict[str, float]]:
        """The logged rows before ``step`` not handed on yet, as ``train/`` keys (then marked handed on)."""
        rows = [{"step": r["step"], **{train_metric(k): v for k, v in r.items() if k != "step"}}
                for r in self.history[self._reported:] if r["step"] < step]
        self._reported = len(self.history)
        return rows


def check_finite_weights(weights: Mapping[str, torch.Tensor], step: int) -> None:
    """Raise DivergedError if a weight or buffer is NaN/inf after this step's update.

    An infinite gradient leaves the step's loss finite but the updated weights NaN; the losses
    only show it one step later, after this step's checkpoint and evaluation.
    """
    finite = torch.stack([t.isfinite().all() for t in weights.values()])  # one device sync below
    if not bool(finite.all()):
        bad = [name for name, ok in zip(weights, finite.tolist(), strict=True) if not ok]
        raise DivergedError(step, f"non-finite weights after the update: {', '.join(bad[:5])}"
                                  + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""))
