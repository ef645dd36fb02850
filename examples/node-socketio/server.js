// A socket.io server with @socket.io/redis-adapter, set up as the adapter's documentation
// shows: one node-redis client to publish, a duplicate to subscribe, both connected before
// the server listens. Clients join a room by emitting `subscribe`; `POST /publish`
// emits to a room and `POST /broadcast` to everyone, from whichever replica gets the
// request.
//
//   REDIS_URL=redis://localhost:6379/0 node server.js --port 3000
"use strict";

const http = require("node:http");
const { parseArgs } = require("node:util");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const { values: args } = parseArgs({
  options: { port: { type: "string", default: "3000" }, host: { type: "string", default: "127.0.0.1" } },
});
const MAX_BODY = 1 << 20;

function readJson(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error("body too large"));
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

function reply(res, status, body) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

async function main() {
  const pubClient = createClient({ url: process.env.REDIS_URL || "redis://localhost:6379/0" });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pubClient, subClient) });

  io.on("connection", (socket) => {
    socket.on("subscribe", (room, ack) => {
      if (typeof room !== "string" || room === "") {
        if (typeof ack === "function") ack({ ok: false, error: "room must be a non-empty string" });
        return;
      }
      socket.join(room);
      if (typeof ack === "function") ack({ ok: true, room });
    });
  });

  // socket.io answers its own path; everything else comes here.
  httpServer.on("request", async (req, res) => {
    if (req.url.startsWith("/socket.io/")) return;
    if (req.method !== "POST" || (req.url !== "/publish" && req.url !== "/broadcast")) {
      return reply(res, 404, { error: "not found" });
    }
    let body;
    try {
      body = await readJson(req);
    } catch (err) {
      return reply(res, 400, { error: String(err.message || err) });
    }
    if (req.url === "/publish") {
      if (typeof body.room !== "string" || body.room === "") return reply(res, 400, { error: "room required" });
      io.to(body.room).emit("notification", { room: body.room, data: body.data });
    } else {
      io.emit("notification", { room: null, data: body.data });
    }
    reply(res, 200, { ok: true });
  });

  httpServer.listen(Number(args.port), args.host);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
