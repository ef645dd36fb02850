"""The harness's control API: lets `gauntlet chaos` in another terminal act on a stack
that this process supervises (restart a replica, scale, drain, crash a dependency).

Loopback only, and every request needs the control token from the (owner-only) state
file. Operations that only need a pid or the proxy API (kill, pause, toxics) do not
come through here; the ones that need the supervisor (it is the children's parent) do.
"""

from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.ports import LOOPBACK


MAX_BODY = 64 * 1024


def _operations(stack) -> dict:
    return {
        "signal": lambda a: stack.signal_replica(a["replica"], int(a["signum"])),
        "restart": lambda a: stack.restart_replica(a["replica"], graceful=a.get("graceful", True)),
        "revive": lambda a: {"revived": stack.revive_replica(a["replica"])},
        "add_replica": lambda a: {"replica": stack.add_replica()},
        "remove_replica": lambda a: stack.remove_replica(a["replica"]),
        "drain": lambda a: stack.drain(a["replica"]),
        "undrain": lambda a: stack.undrain(a["replica"]),
        "crash_dependency": lambda a: stack.crash_dependency(a["dependency"], keep_data=a.get("keep_data", True)),
        "restart_dependency": lambda a: stack.restart_dependency(a["dependency"]),
        "set_restart_delay": lambda a: setattr(stack.spec, "restart_delay", a.get("delay")),
        "state": lambda a: stack.state().to_json(),
    }


class ControlServer:
    def __init__(self, stack) -> None:
        self.stack = stack
        ops = _operations(stack)
        token = stack.control_token

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # requests are logged by the stack's progress
                pass

            def _reply(self, status: int, body: object) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _arguments(self) -> dict:
                raw = self.headers.get("Content-Length", "0")
                if not raw.isdigit() or int(raw) > MAX_BODY:
                    raise ValueError(f"Content-Length must be a number of bytes up to {MAX_BODY}")
                args = json.loads(self.rfile.read(int(raw)) or b"{}")
                if not isinstance(args, dict):
                    raise ValueError("the body must be a JSON object of arguments")
                return args

            def do_POST(self) -> None:
                given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                # Bytes: compare_digest raises on non-ASCII text, which would drop the
                # connection instead of refusing it.
                if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode()):
                    return self._reply(401, {"error": "bad control token"})
                op = ops.get(self.path.strip("/"))
                if op is None:
                    return self._reply(404, {"error": f"unknown operation {self.path!r}"})
                try:
                    args = self._arguments()
                    result = op(args)
                except (KeyError, ValueError, TypeError) as exc:
                    return self._reply(400, {"error": str(exc).strip("'\"")})
                except Exception as exc:  # report, keep serving: the stack stays up
                    return self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})
                self._reply(200, result if isinstance(result, dict) else {"ok": True})

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="control-api", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
