// Drives official socket.io-client sockets for switchboard's Rust integration tests.
// Protocol: one JSON command per stdin line; one JSON report per stdout line.
//   {"op":"connect","id":"c1","url":"http://127.0.0.1:3000/ws/app","path":"/socket.io",
//    "transport":"websocket"|"polling"|"default","auth":{...},"query":{...}}
//   {"op":"emit","id":"c1","event":"message:send","args":[{...}],"ack":true}
//   {"op":"close","id":"c1"}
//   {"op":"pause","id":"c1"}   closes the transport and stays away (not a goodbye: the
//                              session may be recovered)
//   {"op":"resume","id":"c1"}  comes back (with its pid and last offset, if it has them)
// Reports: {"id","type":"connect","sid"} | {"id","type":"connect_error","message"}
//          {"id","type":"event","event","args"} | {"id","type":"ack","seq","args"}
//          {"id","type":"disconnect","reason"} | {"type":"error","message"}
import { io } from "socket.io-client";
import { createInterface } from "node:readline";

const sockets = new Map();
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function connect(c) {
  const socket = io(c.url, {
    path: c.path ?? "/socket.io",
    // "default": the client's own default, long polling upgraded to a WebSocket.
    transports: c.transport === "default" ? ["polling", "websocket"] : [c.transport ?? "websocket"],
    auth: c.auth ?? undefined,
    query: c.query ?? undefined,
    reconnection: false,
    forceNew: true,
    timeout: 10000,
  });
  sockets.set(c.id, socket);
  socket.on("connect", () =>
    out({ id: c.id, type: "connect", sid: socket.id, recovered: socket.recovered === true }),
  );
  socket.on("connect_error", (e) => out({ id: c.id, type: "connect_error", message: String(e && e.message) }));
  socket.on("disconnect", (reason) => out({ id: c.id, type: "disconnect", reason }));
  socket.onAny((event, ...args) => out({ id: c.id, type: "event", event, args }));
}

function emit(c) {
  const socket = sockets.get(c.id);
  if (!socket) return out({ type: "error", message: `no socket ${c.id}` });
  const args = c.args ?? [];
  if (c.ack) {
    socket.timeout(5000).emit(c.event, ...args, (err, ...reply) => {
      out({ id: c.id, type: "ack", seq: c.seq ?? null, event: c.event, error: err ? String(err.message) : null, args: reply });
    });
  } else {
    socket.emit(c.event, ...args);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    return out({ type: "error", message: `bad command: ${e}` });
  }
  try {
    if (c.op === "connect") connect(c);
    else if (c.op === "emit") emit(c);
    else if (c.op === "pause") {
      const socket = sockets.get(c.id);
      socket.io.opts.reconnection = false;
      socket.io.engine.close();
    } else if (c.op === "resume") {
      sockets.get(c.id)?.connect();
    } else if (c.op === "close") {
      sockets.get(c.id)?.disconnect();
      sockets.delete(c.id);
    } else out({ type: "error", message: `unknown op ${c.op}` });
  } catch (e) {
    out({ type: "error", message: String(e) });
  }
});
rl.on("close", () => {
  for (const s of sockets.values()) s.disconnect();
  process.exit(0);
});
