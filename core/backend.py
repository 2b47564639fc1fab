"""The benchmark backend contract (BackendSpec's impl names a class following it).

    backend = SomeBackend()
    reason = backend.skip_reason(target)          # None: it can run this Target here; else why not
    call = backend.prepare(target, batch, threads)  # loads and compiles; returns a PreparedCall
    seconds = call.timed()                         # one synchronous call

A PreparedCall times itself with perf_counter; GPU calls mix in CudaEventsMixin to time on
their CUDA stream. `macs_per_image` (when known) gives GFLOP/s and the share of peak.
"""

from __future__ import annotations

import time


class PreparedCall:
    macs_per_image: int | None = None
    device: str = "cpu"

    def call(self) -> None:
        raise NotImplementedError

    def timed(self) -> float:
        start = time.perf_counter()
        self.call()
        return time.perf_counter() - start


class CudaEventsMixin:
    """Time a call with CUDA events on the current stream (what the GPU spent, not the host)."""

    def timed(self) -> float:
        import torch  # lazy: the contract module is imported by CPU-only code too

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        self.call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
