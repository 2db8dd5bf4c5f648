"""Adam for stacked parameters (K, ...): each member with its own learning rates and betas.

Each update is torch's fused Adam (``torch.optim.adam.adam(..., fused=True)``, the kernel
``torch.optim.Adam(fused=True)`` runs) on each member's slices of the stacked parameters, their
gradients and their moments, so a member's update is, bit for bit, the one its own single run's
Adam makes; members that share their hyperparameters (the seeds of one config) are updated by one
call. Everything an update reads lives on the parameters' device, the step counts included
(one per member and parameter, as torch's per-parameter ``step``), and nothing is read back to
the host: the update is capturable in a CUDA graph (``capturable`` says so; ``infogan.capture``
checks it before capturing).

A member's state reads out as the ``state_dict`` of a ``torch.optim.Adam`` over one member's
parameters (what a checkpoint holds, what a single run saved before the step was stacked) and is
written back from one (``member_state_dict`` / ``load_member_state_dict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.adam import adam

# One parameter group, in the single network's order: (name, stacked parameter (K, ...), one member's shape).
NamedParameters = Sequence[tuple[str, nn.Parameter, tuple[int, ...]]]


class StackedAdam:
    """Adam (without weight decay or amsgrad) over parameter groups of stacked parameters.

    Args:
        groups: the parameter groups, each a list of (name, stacked parameter, one member's shape)
            in the order the single network's ``torch.optim.Adam`` would hold them (a member's
            state dict numbers the parameters in this order).
        lr: one list per group of the members' learning rates (K each).
        betas: the members' (beta1, beta2).
        eps: Adam's epsilon.
    """

    def __init__(self, groups: Sequence[NamedParameters], lr: Sequence[Sequence[float]],
                 betas: Sequence[tuple[float, float]], eps: float = 1e-8):
        self.groups = [list(g) for g in groups]
        self.lr, self.betas, self.eps = [list(map(float, row)) for row in lr], [tuple(map(float, b)) for b in betas], eps
        self.k = len(self.betas)
        if any(len(row) != self.k for row in self.lr) or len(self.lr) != len(self.groups):
            raise ValueError(f"need one learning rate per member ({self.k}) for each of {len(self.groups)} groups")
        self.params = [p for g in self.groups for _, p, _ in g]
        self.shapes = [shape for g in self.groups for _, _, shape in g]
        device = self.params[0].device
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.contiguous_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.contiguous_format) for p in self.params]
        # (parameters, K): float32 on the device, as the fused kernel reads its step counts.
        self.steps = torch.zeros(len(self.params), self.k, dtype=torch.float32, device=device)
        self._calls = self._plan()

    @property
    def capturable(self) -> bool:
        """Whether a CUDA graph can capture ``step``: every state tensor is on the parameters' device
        (step counts included), so an update never reads a value back to the host."""
        device = self.params[0].device
        return all(t.device == device for t in (self.steps, *self.exp_avg, *self.exp_avg_sq))

    def _plan(self) -> list[tuple[int, list[int], float, float, float]]:
        """One fused call per group and set of members with the same (lr, beta1, beta2):
        (group, members, lr, beta1, beta2)."""
        calls = []
        for gi, row in enumerate(self.lr):
            sets: dict[tuple[float, float, float], list[int]] = {}
            for member in range(self.k):
                sets.setdefault((row[member], *self.betas[member]), []).append(member)
            calls += [(gi, members, lr, b1, b2) for (lr, b1, b2), members in sets.items()]
        return calls

    def _member(self, t: torch.Tensor, k: int) -> torch.Tensor:
        """Member k's elements of a stacked tensor, flat (every stored layout keeps a member's
        elements together and the members in order: batch norm's K*C channels included)."""
        return t.view(self.k, -1)[k]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every member. Where every member shares a group's hyperparameters (a step
        of one member, the seeds of one config) the group is updated as whole stacked tensors, one
        call whatever K is; otherwise each set of members that shares them, on its slices."""
        start = 0
        for gi, group in enumerate(self.groups):
            indices = range(start, start + len(group))
            start += len(group)
            grads = [self.params[i].grad for i in indices]
            if any(g is None for g in grads):
                raise RuntimeError("a stacked parameter got no gradient: every member's loss must reach every parameter")
            for _, members, lr, beta1, beta2 in (c for c in self._calls if c[0] == gi):
                if len(members) == self.k:  # member 0's step counts stand for all (copied after)
                    params, gr, m, v = ([self.params[i] for i in indices], grads, [self.exp_avg[i] for i in indices],
                                        [self.exp_avg_sq[i] for i in indices])
                    steps = [self.steps[i, 0] for i in indices]
                else:
                    slices = [(self._member(self.params[i], k), self._member(grad, k),  # type: ignore[arg-type]
                               self._member(self.exp_avg[i], k), self._member(self.exp_avg_sq[i], k), self.steps[i, k])
                              for k in members for i, grad in zip(indices, grads, strict=True)]
                    params, gr, m, v, steps = (list(column) for column in zip(*slices, strict=True))
                adam(params, gr, m, v, [], steps, fused=True, amsgrad=False, beta1=beta1, beta2=beta2, lr=lr,
                     weight_decay=0.0, eps=self.eps, maximize=False)
                if len(members) == self.k > 1:
                    self.steps[indices.start:indices.stop, 1:].copy_(self.steps[indices.start:indices.stop, :1])

    # -- members in and out

    def _indices(self) -> list[list[int]]:
        out, i = [], 0
        for g in self.groups:
            out.append(list(range(i, i + len(g))))
            i += len(g)
        return out

    def member_state_dict(self, k: int) -> dict[str, Any]:
        """Member k's state as a ``torch.optim.Adam(fused=True)`` over its parameters saves it (no
        state before its first step, as torch's lazily created state)."""
        state: dict[int, dict[str, torch.Tensor]] = {}
        groups = []
        for gi, indices in enumerate(self._indices()):
            groups.append({"lr": self.lr[gi][k], "betas": self.betas[k], "eps": self.eps, "weight_decay": 0.0,
                           "amsgrad": False, "maximize": False, "fused": True, "params": indices})
            for i in indices:
                if float(self.steps[i, k]) > 0:
                    state[i] = {"step": self.steps[i, k].detach().clone(),
                                "exp_avg": self._member(self.exp_avg[i], k).view(self.shapes[i]).clone(),
                                "exp_avg_sq": self._member(self.exp_avg_sq[i], k).view(self.shapes[i]).clone()}
        return {"state": state, "param_groups": groups}

    @torch.no_grad()
    def load_member_state_dict(self, k: int, saved: dict[str, Any]) -> None:
        """Write a ``torch.optim.Adam`` state dict over one member's parameters (``member_state_dict``,
        or a single run's checkpoint) into member k's moments and step counts.

        Raises:
            ValueError: its groups or parameters do not fit this optimiser's.
        """
        saved_groups = saved["param_groups"]
        if [len(g["params"]) for g in saved_groups] != [len(g) for g in self.groups]:
            raise ValueError(f"an optimiser state of groups {[len(g['params']) for g in saved_groups]} does not fit "
                             f"one of groups {[len(g) for g in self.groups]}")
        for saved_group, indices in zip(saved_groups, self._indices(), strict=True):
            for saved_index, i in zip(saved_group["params"], indices, strict=True):
                entry = saved["state"].get(saved_index)
                m, v = self._member(self.exp_avg[i], k), self._member(self.exp_avg_sq[i], k)
                if entry is None:  # never stepped: Adam's fresh state
                    m.zero_()
                    v.zero_()
                    self.steps[i, k] = 0.0
                    continue
                for name, moment in (("exp_avg", m), ("exp_avg_sq", v)):
                    if entry[name].numel() != moment.numel():
                        raise ValueError(f"optimiser state {name} of parameter {self.groups_names()[i]} has "
                                         f"{entry[name].numel()} values, the parameter {moment.numel()}")
                    moment.copy_(entry[name].reshape(-1))
                self.steps[i, k] = float(entry["step"])

    def groups_names(self) -> list[str]:
        """Every parameter's name, in order."""
        return [name for g in self.groups for name, _, _ in g]

    def kept(self, index: torch.Tensor, groups: Sequence[NamedParameters]) -> StackedAdam:
        """A copy for the members ``index``, over ``groups`` (the same parameters, their members kept)."""
        members = index.tolist()
        new = StackedAdam(groups, [[row[k] for k in members] for row in self.lr], [self.betas[k] for k in members],
                          self.eps)
        with torch.no_grad():
            for old, fresh in ((self.exp_avg, new.exp_avg), (self.exp_avg_sq, new.exp_avg_sq)):
                for o, f in zip(old, fresh, strict=True):
                    f.view(new.k, -1).copy_(o.view(self.k, -1).index_select(0, index.to(o.device)))
            new.steps.copy_(self.steps.index_select(1, index.to(self.steps.device)))
        return new

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The groups' stacked parameters as ``torch.amp.GradScaler`` reads them (fp16, one member)."""
        return [{"params": [p for _, p, _ in g]} for g in self.groups]
