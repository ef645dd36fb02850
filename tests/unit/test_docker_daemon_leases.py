"""The private dockerd is shared by the sessions that use it at once: the last lease out
stops it, and only if a session started it. The bookkeeping is tested here against a
daemon that records start and stop (a real dockerd per case would be a second daemon
beside the shared one); every Docker test session runs it against the real one."""

import subprocess
import sys

from harness.docker.daemon import PrivateDaemon, SharedDaemon


class RecordingDaemon(PrivateDaemon):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.up = False
        self.calls: list[str] = []

    def start(self, timeout: float = 30.0) -> bool:
        self.calls.append("start")
        if self.up:
            return False
        self.up = True
        return True

    def stop(self, timeout: float = 20.0) -> None:
        self.calls.append("stop")
        self.up = False


def test_the_last_lease_out_stops_a_daemon_a_session_started(tmp_path):
    daemon = RecordingDaemon(tmp_path)
    shared = SharedDaemon(daemon)
    shared.acquire()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (shared.leases / str(other.pid)).touch()  # another session holds it too
        assert shared.release() is False and daemon.up, "stopped under a live session"
    finally:
        other.kill()
        other.wait()
    shared.acquire()
    assert shared.release() is True and not daemon.up  # the dead session's lease is swept
    assert daemon.calls == ["start", "start", "stop"]


def test_a_daemon_started_outside_the_sessions_is_left_running(tmp_path):
    daemon = RecordingDaemon(tmp_path)
    daemon.up = True  # `make docker-daemon` started it
    shared = SharedDaemon(daemon)
    shared.acquire()
    assert shared.release() is False and daemon.up and "stop" not in daemon.calls
