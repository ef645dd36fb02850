"""A user's realtime app that says nothing about itself: no welcome frame, no instance
in its messages, acks or headers. Replicas fan out through Redis pub/sub.

- `GET /healthz` 200
- `WS /ws?user=u1`: accepted silently; frames `{"user": "u1"|null, "data": {...}}`
- `POST /publish {"user", "data"}` and `POST /broadcast {"data"}` -> 202 `{"ok": true}`

Which replica a socket or a publish hit can only come from the load balancer, which is
what the replica-attribution tests need. `--exit-after SECONDS --exit-instance r2` makes
replica r2 exit with code 3 on its own after that long, as an app with a fatal defect
would (`--instance` names the replica; the harness passes `{instance}`).
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys

import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

CHANNEL = "plain-app"
sockets: dict[str, set] = {}
state: dict = {}


async def fan_in() -> None:
    pubsub = state["redis"].pubsub()
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message.get("type") != "message":
            continue
        frame = json.loads(message["data"])
        user = frame.get("user")
        targets = [ws for group in sockets.values() for ws in group] if user is None else list(sockets.get(user, ()))
        text = json.dumps(frame)
        for ws in targets:
            try:
                await ws.send_text(text)
            except Exception:
                pass


@contextlib.asynccontextmanager
async def lifespan(app):
    state["redis"] = aioredis.from_url(os.environ["PLAIN_REDIS"])
    state["fan_in"] = asyncio.create_task(fan_in())
    exit_after = state.get("exit_after")
    if exit_after:
        asyncio.get_running_loop().call_later(exit_after, _die)
    try:
        yield
    finally:
        state["fan_in"].cancel()
        await state["redis"].aclose()


def _die() -> None:
    print(f"fatal: giving up after {state['exit_after']}s (simulated defect)", flush=True)
    sys.stdout.flush()
    os._exit(3)


async def healthz(request):
    return JSONResponse({"ok": True})


async def publish(request):
    body = await request.json()
    await state["redis"].publish(CHANNEL, json.dumps({"user": body.get("user"), "data": body.get("data")}))
    return JSONResponse({"ok": True}, status_code=202)


async def broadcast(request):
    body = await request.json()
    await state["redis"].publish(CHANNEL, json.dumps({"user": None, "data": body.get("data")}))
    return JSONResponse({"ok": True}, status_code=202)


async def ws_endpoint(websocket):
    user = websocket.query_params.get("user", "")
    await websocket.accept()
    sockets.setdefault(user, set()).add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        sockets.get(user, set()).discard(websocket)


app = Starlette(routes=[Route("/healthz", healthz), Route("/publish", publish, methods=["POST"]),
                        Route("/broadcast", broadcast, methods=["POST"]), WebSocketRoute("/ws", ws_endpoint)],
                lifespan=lifespan)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--instance", default="")
    parser.add_argument("--exit-after", type=float, default=0.0)
    parser.add_argument("--exit-instance", default="")
    args = parser.parse_args()
    if args.exit_instance in ("", args.instance):
        state["exit_after"] = args.exit_after
    uvicorn.run(app, host="127.0.0.1", port=args.listen, log_level="warning")
