"""The LoadTestShape that runs `--stages`, so the same stages drive the web UI,
headless runs and distributed runs alike."""

from __future__ import annotations

import logging

from locust import LoadTestShape

from scenarios.stages import EXAMPLE, Stage, StagesError, parse_stages, spawn_rate_for, target_at

log = logging.getLogger("gauntlet.load")


class _RunTimeIsRead(logging.Filter):
    """Locust warns that a shape ignores -t unless it sets use_common_options; this one
    reads -t itself, so only the part of the warning about -u/-r is true."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("--run-time, --users or --spawn-rate have no impact"):
            return False
        if text.startswith("The following option(s) will be ignored:"):
            ignored = [o.strip() for o in text.split(":", 1)[1].split(",") if o.strip() != "--run-time"]
            if not ignored:
                return False
            record.msg, record.args = f"{', '.join(ignored)} ignored: the stages set the users and the ramp", ()
        return True


logging.getLogger("locust.main").addFilter(_RunTimeIsRead())


class StagesShape(LoadTestShape):
    """Runs `--stages` (or the scenario's default stages).

    Stages are read when the test starts, so a value edited in the web UI applies to
    the next run. Bad stages from the web UI stop the run with one error line.
    `-t/--run-time` cuts the stages short (Locust itself ignores it for shapes);
    `-u` and `-r` have no effect: the stages say how many users and how fast.
    """

    abstract = True
    # False: the web UI then hides its user-count, ramp and run-time fields, which a
    # shape ignores (a user typing 10 users would get the stages' 500). -t still
    # reaches run_time_limit() through the parsed options.
    use_common_options = False
    default_stages: str = EXAMPLE

    def __init__(self) -> None:
        super().__init__()
        self._stages: tuple[Stage, ...] | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self._stages = None

    def stages(self) -> tuple[Stage, ...] | None:
        if self._stages is None:
            text = self.default_stages
            options = getattr(getattr(self.runner, "environment", None), "parsed_options", None)
            if options is not None and getattr(options, "stages", None):
                text = options.stages
            try:
                self._stages = parse_stages(text)
            except StagesError as exc:
                log.error("gauntlet: %s", exc)
                return None
        return self._stages

    def run_time_limit(self) -> float | None:
        options = getattr(getattr(self.runner, "environment", None), "parsed_options", None)
        limit = getattr(options, "run_time", None)
        return float(limit) if limit else None

    def tick(self) -> tuple[int, float] | None:
        stages = self.stages()
        if stages is None:
            return None
        elapsed = self.get_run_time()
        limit = self.run_time_limit()
        if limit is not None and elapsed >= limit:
            return None
        target = target_at(stages, elapsed)
        if target is None:
            return None
        return target, spawn_rate_for(target, self.get_current_user_count())
