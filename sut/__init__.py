"""gauntlet's reference system under test: a multi-replica notification service.

Run one replica with `python -m sut --help`. The package imports nothing from the
rest of gauntlet: it is the app being tested, and must stay an ordinary app.
"""
