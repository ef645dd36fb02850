"""Soak: long and steady, for leaks, slow drifts and reconnect churn over hours.

    locust -f scenarios/soak.py                      # web UI, against the running stack
    locust -f scenarios/soak.py --headless --stages "2m:200,2h:200,1m:0"

Shared users, arguments, records: scenarios/users.py, scenarios/settings.py, docs/load.md.
"""

import sys
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # a checkout without `pip install -e`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scenarios.plugin import install  # noqa: E402
from scenarios.settings import ScenarioDefaults  # noqa: E402

install(ScenarioDefaults(
    name="soak",
    stages="2m:200,2h:200,1m:0",
    subscriber_weight=8,
    publisher_weight=1,
    reader_weight=1,
    publishers=0,
    publish_rate=2.0,
    broadcast_ratio=0.05,
    storm_at="",
))

from scenarios.shape import StagesShape  # noqa: E402
from scenarios.users import (  # noqa: E402,F401 (Locust collects them)
    HostileUser, PublisherUser, ReaderUser, SlowReaderUser, SlowRequestUser, StalledReaderUser, SubscriberUser,
    VanishingUser,
)


class SoakShape(StagesShape):
    default_stages = "2m:200,2h:200,1m:0"
