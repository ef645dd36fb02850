"""gauntlet's reference system under test: a multi-replica notification service.

Run one replica with `python -m sut --help`. The package imports nothing from the
rest of gauntlet: it is the app being tested, and must stay an ordinary app.

The protocol is in DESIGN.md ("Reference SUT protocol"); the details it leaves open:

- Every HTTP response carries `X-Instance: <replica>`; errors are `{"error": "..."}`
  (400 malformed JSON, 401 missing/bad credential, 403 another user's history,
  404 unknown route or item, 405, 413 body over --max-body-bytes, 422 invalid fields,
  503 + `Retry-After: 1` when Postgres is unavailable).
- `GET /api/ready` 200 `{"status":"ready",...}`; 503 `{"status":"unready","instance",
  "failed":[...]}` with `database`, `broker`, `shutting-down`.
- `GET /api/notifications?user=&after=0&limit=100` (limit <= 1000; user defaults to
  the token's) -> `{"user","items":[notification frames],"count","next_after"}`.
- `GET /api/items/{id}` -> `{"id","name","price_cents","description","source"}` and
  header `X-Source: cache|db`.
- WebSocket close codes: 4401 bad token, 1001 shutdown, 1013 database unavailable at
  connect or client too slow (its queue overflowed). Client frames besides `resume`:
  `{"type":"ping"}` -> `{"type":"pong"}`; a malformed frame -> `{"type":"error",...}`.
  Init items count as sent on that connection (a resume does not repeat them), and a
  live frame with an id <= the init's `last_id` is not sent (it is history: resume).
- `/api/metrics`: see `Replica.metrics`.
"""
