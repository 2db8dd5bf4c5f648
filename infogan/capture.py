"""The captured training iteration: one CUDA graph replay per step (``train.step_mode='graph'``).

A step of these small GANs is hundreds of tiny kernels; on a GPU it is bound by Python and kernel
launches, not arithmetic. ``CapturedIteration`` records one whole iteration (the draw from the
loop's device generator, the CR step, the D step, the G steps, every optimiser update and the
spectral-norm power iterations) into a ``torch.cuda.CUDAGraph`` and replays it, so Python does O(1)
work per step. The losses come back as a device tensor, read by the loss log once per interval.

Capture needs warm-up iterations (they allocate the gradients and the optimisers' state and
compile what is compiled) that must not count as training: ``TrainingSnapshot`` copies every
weight, buffer, optimiser state and the generators' states before them and writes them back, in
place, after them (an optimiser state the warm-up created is zeroed, which is exactly Adam's fresh
state), so the first replay is the iteration an eager run would do next. A graph per phase
(before and during InfoGAN-CR's) is captured when the phase starts, in one memory pool.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from infogan.sampling import IterationSampler
from infogan.step import InfoGANStep


class TrainingSnapshot:
    """Every tensor a training iteration changes, copied, to be written back in place.

    Args:
        step: the networks and optimisers.
        generators: the generators an iteration draws from (the loop's).
    """

    def __init__(self, step: InfoGANStep, generators: list[torch.Generator]):
        self.step = step
        self.generators = [(g, g.get_state()) for g in generators]
        self.tensors = [(t, t.detach().clone()) for t in _live_tensors(step)]
        self.optimiser_state = {id(t): t.detach().clone() for t in _optimiser_tensors(step)}

    def restore(self) -> None:
        """Write the copied values back into the same tensors (their addresses do not change)."""
        with torch.no_grad():
            for live, saved in self.tensors:
                live.copy_(saved)
            for t in _optimiser_tensors(self.step):
                if id(t) in self.optimiser_state:
                    t.copy_(self.optimiser_state[id(t)])
                else:  # created by the warm-up: Adam's fresh state is zeros and step 0
                    t.zero_()
        for generator, state in self.generators:
            generator.set_state(state)


def _live_tensors(step: InfoGANStep) -> list[torch.Tensor]:
    """Weights and buffers (batch-norm statistics, spectral-norm vectors) of every network."""
    return [t for net in step.networks() for t in net.state_dict(keep_vars=True).values()]


def _optimiser_tensors(step: InfoGANStep) -> list[torch.Tensor]:
    return [v for opt in step.optimisers() for state in opt.state.values() for v in state.values()
            if isinstance(v, torch.Tensor)]


def warm_up(step: InfoGANStep, generators: list[torch.Generator], iteration: Callable[[], object],
            times: int) -> None:
    """Run ``iteration`` ``times`` times and undo their effect on the training state."""
    snapshot = TrainingSnapshot(step, generators)
    for _ in range(times):
        iteration()
    snapshot.restore()


class CapturedIteration:
    """Training iterations as CUDA graph replays (see the module docstring).

    Args:
        step: the networks, optimisers and update (its compute may be compiled first).
        sampler: draws an iteration's inputs from the loop's CUDA generator.
        warmup: iterations run (and undone) before each capture.
    """

    def __init__(self, step: InfoGANStep, sampler: IterationSampler, warmup: int = 3):
        if sampler.generator.device.type != "cuda":
            raise ValueError("a captured iteration needs the loop's generator on a CUDA device")
        self.step, self.sampler, self.warmup = step, sampler, warmup
        self._graphs: dict[bool, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._pool: object | None = None

    def __call__(self, cr: bool) -> torch.Tensor:
        """One training iteration; ``cr`` says whether InfoGAN-CR's phase has started.

        Returns:
            The iteration's losses (a fresh device tensor, ordered as ``step.loss_names``).
        """
        if cr not in self._graphs:
            self._graphs[cr] = self._capture(cr)
        graph, losses = self._graphs[cr]
        graph.replay()
        return losses.clone()

    def _iteration(self, cr: bool) -> torch.Tensor:
        draw = self.sampler(cr)
        return self.step(draw.real, draw.latent, draw.pair, draw.g_latents)

    def _capture(self, cr: bool) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        if cr and self.step.cr is None:
            self.step.start_cr()  # its optimiser's state then exists before the capture
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            warm_up(self.step, [self.sampler.generator], lambda: self._iteration(cr), self.warmup)
        torch.cuda.current_stream().wait_stream(side)
        for opt in self.step.optimisers():
            opt.zero_grad(set_to_none=True)  # gradients are allocated inside the graph's pool
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.sampler.generator)
        with torch.cuda.graph(graph, pool=self._pool):
            losses = self._iteration(cr)
        self._pool = graph.pool()
        return graph, losses
