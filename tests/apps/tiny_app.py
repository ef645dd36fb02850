"""A user's own app, not the reference SUT: proves the harness runs any command template.

It listens on --listen PORT, reads its database and Redis URLs from env, answers
/healthz (liveness) and /readyz (200 only when Postgres and Redis answer), and
/whoami with its instance name.
"""

import argparse
import asyncio
import os

import asyncpg
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

INSTANCE = os.environ.get("TINY_INSTANCE", "?")


async def healthz(request):
    return JSONResponse({"ok": True, "instance": INSTANCE})


async def readyz(request):
    try:
        conn = await asyncio.wait_for(asyncpg.connect(os.environ["TINY_DB"]), 2)
        await conn.fetchval("SELECT 1")
        await conn.close()
        client = aioredis.from_url(os.environ["TINY_REDIS"])
        await asyncio.wait_for(client.ping(), 2)
        await client.aclose()
    except Exception as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=503)
    return JSONResponse({"ok": True, "instance": INSTANCE})


async def whoami(request):
    return JSONResponse({"instance": INSTANCE, "pid": os.getpid()})


app = Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/whoami", whoami)])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.listen, log_level="warning")
