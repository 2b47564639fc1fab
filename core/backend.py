"""The benchmark backend contract (BackendSpec's impl names a class following it).

    backend = SomeBackend()
    reason = backend.skip_reason(target)          # None: it can run this Target here; else why not
    call = backend.prepare(target, batch, threads)  # loads and compiles; returns a PreparedCall
    seconds = call.timed()                         # one synchronous call

A PreparedCall times itself with perf_counter; GPU calls mix in CudaEventsMixin to time on
their CUDA stream with device-resident inputs and outputs, and implement end_to_end() (host to host,
copies included) for the report's end-to-end column. `macs_per_image` (when known) gives GFLOP/s and the share of peak.
"""

from __future__ import annotations

import time


class PreparedCall:
    macs_per_image: int | None = None
    device: str = "cpu"
    timing = "host"  # what timed() measures: "host" (perf_counter) or "cuda-events" (device-resident I/O)

    def end_to_end(self) -> None:
        """One call from host inputs to host outputs (copies included); GPU calls implement it."""
        raise NotImplementedError

    def call(self) -> None:
        raise NotImplementedError

    def timed(self) -> float:
        start = time.perf_counter()
        self.call()
        return time.perf_counter() - start


class CudaEventsMixin:
    """Time a call with CUDA events on the current stream (what the GPU spent, not the host): every GPU backend
    keeps its inputs and outputs on the device and runs on torch's current stream, so the events bracket its
    work and nothing else. Its end_to_end() (host to host) is timed apart, with perf_counter."""

    timing = "cuda-events"

    def timed(self) -> float:
        import torch  # lazy: the contract module is imported by CPU-only code too

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        self.call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
