"""The captured training iteration: one CUDA graph replay per step (``train.step_mode='graph'``).

A step of these small GANs is hundreds of tiny kernels; on a GPU it is bound by Python and kernel
launches, not arithmetic. ``CapturedIteration`` records one whole iteration of the step's K members
(each member's draw from its loop generator, the CR step, the D step, the G steps, every optimiser
update and the spectral-norm power iterations) into a ``torch.cuda.CUDAGraph`` and replays it, so
Python does O(1) work per step whatever K is. The losses come back as a device tensor, read by the
loss log once per interval.

Capture needs warm-up iterations (they compile what is compiled and let the allocator settle) that
must not count as training: ``TrainingSnapshot`` copies every weight, buffer, optimiser state and
the generators' states before them and writes them back, in place, after them, so the first
replay is the iteration an eager run would do next. A graph per phase (before and during
InfoGAN-CR's) is captured when the phase starts, and again whenever the step replaces a tensor the
graph reads (``InfoGANStep.version``: a member left, or the CR phase began): one re-capture, never
a fall-back to eager. Only optimisers whose whole state lives on the device can be captured
(``check_capturable``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from infogan.step import InfoGANStep


def check_capturable(optimisers: Sequence[Any]) -> None:
    """Refuse optimisers a CUDA graph cannot capture: a graph replays kernels, so an update that
    reads a step count or a hyperparameter from the host would replay the captured value forever
    (torch's own ``Optimizer`` checks ``capturable`` in its param groups for this reason).

    Raises:
        ValueError: an optimiser is not capturable (named).
    """
    for opt in optimisers:
        groups = getattr(opt, "param_groups", None)
        ok = getattr(opt, "capturable", None)
        if ok is None and groups is not None:  # a torch.optim.Optimizer
            ok = all(g.get("capturable", False) for g in groups)
        if not ok:
            raise ValueError(f"{type(opt).__name__} is not capturable: its state (step counts) is not all on the "
                             "device, so a CUDA graph of its update would replay one step forever")


class TrainingSnapshot:
    """Every tensor a training iteration changes, copied, to be written back in place.

    Args:
        step: the networks and optimisers.
    """

    def __init__(self, step: InfoGANStep):
        self.generators = [(g, g.get_state()) for g in step.generators()]
        self.tensors = [(t, t.detach().clone()) for t in _state_tensors(step)]

    def restore(self) -> None:
        """Write the copied values back into the same tensors (their addresses do not change)."""
        with torch.no_grad():
            for live, saved in self.tensors:
                live.copy_(saved)
        for generator, state in self.generators:
            generator.set_state(state)


def _state_tensors(step: InfoGANStep) -> list[torch.Tensor]:
    """Weights and buffers (batch-norm statistics, spectral-norm vectors) of every network, and
    every optimiser's moments and step counts."""
    nets = [t for net in step.networks() for t in net.state_dict(keep_vars=True).values()]
    return nets + [t for opt in step.optimisers() for t in (*opt.exp_avg, *opt.exp_avg_sq, opt.steps)]


def warm_up(step: InfoGANStep, iteration: Callable[[], object], times: int) -> None:
    """Run ``iteration`` ``times`` times and undo their effect on the training state."""
    snapshot = TrainingSnapshot(step)
    for _ in range(times):
        iteration()
    snapshot.restore()


class CapturedIteration:
    """Training iterations as CUDA graph replays (see the module docstring).

    Args:
        step: the members' networks, optimisers and update (its compute may be compiled first).
        warmup: iterations run (and undone) before each capture.
    """

    def __init__(self, step: InfoGANStep, warmup: int = 3):
        if step.device.type != "cuda":
            raise ValueError("a captured iteration needs the step on a CUDA device")
        self.step, self.warmup = step, warmup
        self._graphs: dict[bool, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._version = step.version
        self._pool: object | None = None
        self.captures = 0  # how many graphs were captured (a member leaving costs one)

    def __call__(self, cr: bool) -> torch.Tensor:
        """One training iteration; ``cr`` says whether InfoGAN-CR's phase has started.

        Returns:
            The members' losses (a fresh device tensor (K, n), ordered as ``step.loss_names``).
        """
        if self._version != self.step.version:  # a tensor the graphs read was replaced
            self._graphs.clear()
            self._pool, self._version = None, self.step.version
        if cr not in self._graphs:
            self._graphs[cr] = self._capture(cr)
        graph, losses = self._graphs[cr]
        graph.replay()
        return losses.clone()

    def _capture(self, cr: bool) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        if cr and self.step.cr is None:
            self.step.start_cr()  # its optimiser's state then exists before the capture
            self._version = self.step.version
        check_capturable(self.step.optimisers())
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            warm_up(self.step, lambda: self.step.iteration(cr), self.warmup)
        torch.cuda.current_stream().wait_stream(side)
        for opt in self.step.optimisers():
            opt.zero_grad()  # gradients are allocated inside the graph's pool
        graph = torch.cuda.CUDAGraph()
        for generator in self.step.generators():
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph, pool=self._pool):
            losses = self.step.iteration(cr)
        self._pool = graph.pool()
        self.captures += 1
        return graph, losses
