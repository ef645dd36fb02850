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
    """Tracks (time, highest id so far) checkpoints at most every CHECKPOINT_EVERY
    seconds, plus the latest frame, so the answer is exact when messages are sparse
    and at most CHECKPOINT_EVERY conservative when they are dense."""

    def __init__(self, margin: float) -> None:
        self.margin = margin
        self.max_id: int | None = None
        self._last_ts = float("-inf")  # when max_id was last updated or confirmed
        self._checkpoints: deque[tuple[float, int]] = deque(
            maxlen=max(CHECKPOINTS, int(margin / CHECKPOINT_EVERY) + 8))
        self._last_checkpoint = float("-inf")
        self._floor: int | None = None  # the previous resume point: never go back past it

    def baseline(self, ts: float, last_id: int | None) -> None:
        """The newest id the server reported at the first connect: anything after it is ours."""
        if last_id is None or self.max_id is not None:
            return
        self.max_id = last_id
        self._last_ts = ts - self.margin
        self._checkpoints.append((self._last_ts, last_id))

    def seen(self, ts: float, msg_id: int) -> None:
        max_id = self.max_id
        if max_id is not None and ts - self._last_checkpoint >= CHECKPOINT_EVERY:
            # Freeze the state as of the previous frame before this one changes it.
            self._checkpoints.append((self._last_ts, max_id))
            self._last_checkpoint = ts
        if max_id is None or msg_id > max_id:
            self.max_id = msg_id
        self._last_ts = ts

    def after(self, disconnect_ts: float) -> int | None:
        """Resume point for a disconnect at `disconnect_ts`; None if nothing is known yet."""
        cutoff = disconnect_ts - self.margin
        found: int | None = None
        if self.max_id is not None and self._last_ts <= cutoff:
            found = self.max_id
        else:
            for ts, max_id in reversed(self._checkpoints):
                if ts <= cutoff:
                    found = max_id
                    break
        if found is not None and (self._floor is None or found > self._floor):
            self._floor = found
        return self._floor
