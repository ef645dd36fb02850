"""Fan-out: a broadcast storm. A few publishers, many subscribers, mostly broadcasts.

    locust -f scenarios/fanout.py                      # web UI, against the running stack
    locust -f scenarios/fanout.py --headless --stages "30s:500,2m:500,15s:0"

Shared users, arguments, records: scenarios/users.py, scenarios/settings.py, docs/load.md.
"""

import sys
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # a checkout without `pip install -e`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scenarios.plugin import install  # noqa: E402
from scenarios.settings import ScenarioDefaults  # noqa: E402

install(ScenarioDefaults(
    name="fanout",
    stages="30s:500,2m:500,15s:0",
    subscriber_weight=1,
    publisher_weight=0,
    reader_weight=0,
    publishers=2,
    publish_rate=20.0,
    broadcast_ratio=0.9,
    storm_at="",
))

from scenarios.shape import StagesShape  # noqa: E402
from scenarios.users import (  # noqa: E402,F401 (Locust collects them)
    HostileUser, PublisherUser, ReaderUser, SlowReaderUser, SlowRequestUser, StalledReaderUser, SubscriberUser,
    VanishingUser,
)


class FanoutShape(StagesShape):
    default_stages = "30s:500,2m:500,15s:0"
