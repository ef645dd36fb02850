"""A python-socketio server with AsyncRedisManager, as its documentation sets one up.

Every replica shares one Redis channel, so an event emitted on one replica reaches the
clients of every other. Clients join a room by emitting `subscribe` with its name;
`POST /publish` emits to one room, `POST /broadcast` to every client.

    REDIS_URL=redis://localhost:6379/0 python app.py --port 8000
"""

import argparse
import os

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

INSTANCE = os.environ.get("INSTANCE", "")

mgr = socketio.AsyncRedisManager(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
sio = socketio.AsyncServer(async_mode="asgi", client_manager=mgr, cors_allowed_origins=[])


@sio.event
async def connect(sid, environ, auth):
    return True


@sio.event
async def subscribe(sid, room):
    if not isinstance(room, str) or not room:
        return {"ok": False, "error": "room must be a non-empty string"}
    await sio.enter_room(sid, room)
    return {"ok": True, "room": room}


async def publish(request: Request) -> JSONResponse:
    body = await request.json()
    room = body.get("room")
    if not isinstance(room, str) or not room:
        return JSONResponse({"error": "room required"}, status_code=400)
    await sio.emit("notification", {"room": room, "data": body.get("data")}, room=room)
    return JSONResponse({"ok": True})


async def broadcast(request: Request) -> JSONResponse:
    body = await request.json()
    await sio.emit("notification", {"room": None, "data": body.get("data")})
    return JSONResponse({"ok": True})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


routes = [
    Route("/publish", publish, methods=["POST"]),
    Route("/broadcast", broadcast, methods=["POST"]),
    Route("/healthz", healthz),
]
app = socketio.ASGIApp(sio, other_asgi_app=Starlette(routes=routes))

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
