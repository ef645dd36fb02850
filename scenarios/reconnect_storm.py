"""Reconnect storm: every socket drops and reconnects at once, at --storm-at times.

    locust -f scenarios/reconnect_storm.py                      # web UI, against the running stack
    locust -f scenarios/reconnect_storm.py --headless --stages "20s:300,100s:300,10s:0"

Shared users, arguments, records: scenarios/users.py, scenarios/settings.py, docs/load.md.
"""

import sys
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # a checkout without `pip install -e`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scenarios.plugin import install  # noqa: E402
from scenarios.settings import ScenarioDefaults  # noqa: E402

install(ScenarioDefaults(
    name="reconnect_storm",
    stages="20s:300,100s:300,10s:0",
    subscriber_weight=8,
    publisher_weight=1,
    reader_weight=0,
    publishers=0,
    publish_rate=5.0,
    broadcast_ratio=0.05,
    storm_at="40s,80s",
))

from scenarios.shape import StagesShape  # noqa: E402
from scenarios.users import (  # noqa: E402,F401 (Locust collects them)
    HostileUser, PublisherUser, ReaderUser, SlowReaderUser, SlowRequestUser, StalledReaderUser, SubscriberUser,
    VanishingUser,
)


class ReconnectStormShape(StagesShape):
    default_stages = "20s:300,100s:300,10s:0"
