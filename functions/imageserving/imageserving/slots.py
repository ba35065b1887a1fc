"""Render slots: how many image requests render at once in one process (issue 8 item 5).

Each render may peak at the decode budget (render/budget.py); the local server runs requests on
a thread pool, so a burst of huge sources would otherwise add those peaks up (8 concurrent 100 MP
PNGs: +3.2 GB). A request waits for a slot up to IS_RENDER_WAIT_S (never past its deadline), then
is answered 503 ``overload`` without any work. One slot covers the whole request - its nested
renders, default and error images - so nothing inside it ever waits twice or deadlocks. On
Lambda a process serves one request at a time and a slot is always free.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from .errors import ISError


class RenderSlots:
    def __init__(self, slots: int, wait_s: float):
        self.slots = slots  # 0: unbounded
        self.wait_s = wait_s
        self._free = threading.BoundedSemaphore(slots) if slots > 0 else None

    @contextmanager
    def hold(self, deadline: float = float("inf")):
        """Hold a slot while the block runs; ``overload`` when none frees up in time."""
        if self._free is None:
            yield
            return
        wait = max(0.0, min(self.wait_s, deadline - time.monotonic()))
        if not self._free.acquire(timeout=wait):
            raise ISError("overload", f"all {self.slots} render slots stayed busy for {wait:g} s (IS_RENDER_SLOTS)")
        try:
            yield
        finally:
            self._free.release()
