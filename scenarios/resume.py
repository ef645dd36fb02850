"""Where to resume after a reconnect.

Fan-out from different replicas can arrive out of id order: id 41 published on r2
may land after id 42 from r1. Resuming after the very last id seen could skip such
an in-flight message, so the resume point is the highest id seen at least `margin`
seconds before the disconnect. The replay that overlaps is marked and expected.
"""

from __future__ import annotations

from collections import deque

CHECKPOINT_EVERY = 0.25
CHECKPOINTS = 64  # >= 16 s of history at the spacing above, far more than any margin


class ResumePoint:
    def __init__(self, margin: float) -> None:
        self.margin = margin
        self.max_id: int | None = None
        self._checkpoints: deque[tuple[float, int]] = deque(
            maxlen=max(CHECKPOINTS, int(margin / CHECKPOINT_EVERY) + 8))
        self._last_checkpoint = float("-inf")
        self._floor: int | None = None  # the previous resume point: never go back past it

    def baseline(self, ts: float, last_id: int | None) -> None:
        """The newest id the server reported at the first connect: anything after it is ours."""
        if last_id is None or self.max_id is not None:
            return
        self.max_id = last_id
        self._checkpoints.append((ts - self.margin, last_id))

    def seen(self, ts: float, msg_id: int) -> None:
        if self.max_id is None or msg_id > self.max_id:
            self.max_id = msg_id
        if ts - self._last_checkpoint >= CHECKPOINT_EVERY:
            self._checkpoints.append((ts, self.max_id))
            self._last_checkpoint = ts

    def after(self, disconnect_ts: float) -> int | None:
        """Resume point for a disconnect at `disconnect_ts`; None if nothing is known yet."""
        cutoff = disconnect_ts - self.margin
        for ts, max_id in reversed(self._checkpoints):
            if ts <= cutoff:
                self._floor = max_id
                break
        return self._floor
