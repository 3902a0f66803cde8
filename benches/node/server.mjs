// The reference: what teams run today. A Node socket.io 4 server doing the job the bench
// workload asks of switchboard, in Chat Service's dialect: HS256 JWT at connect (auth.token
// with or without "Bearer ", or query token), the personal room, `room:join` with an ack,
// `message:send` (participation check, new id and createdAt) broadcast as `message:new` to
// the room, acked. Same ping settings and payload limit as switchboard's default config.
// Usage: PORT=3101 AUTH_JWT_SECRET=… [REDIS_URL=redis://127.0.0.1:6379] node server.mjs
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { Server } from "socket.io";
import jwt from "jsonwebtoken";

const port = Number(process.env.PORT ?? 3101);
const secret = process.env.AUTH_JWT_SECRET ?? "switchboard-development-secret-change-me";
const http = createServer();
const io = new Server(http, {
  pingInterval: 25000,
  pingTimeout: 60000,
  connectTimeout: 10000,
  maxHttpBufferSize: Number(process.env.SOCKET_MAX_PAYLOAD_BYTES ?? 5120),
  transports: ["websocket", "polling"],
});

if (process.env.REDIS_URL) {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
}

io.use((socket, next) => {
  let token = socket.handshake.auth?.token ?? socket.handshake.query?.token;
  if (typeof token !== "string" || token.length === 0) return next(new Error("unauthorized"));
  if (token.startsWith("Bearer ")) token = token.slice(7);
  try {
    socket.data.user = jwt.verify(token, secret, { algorithms: ["HS256"] });
    next();
  } catch (e) {
    next(new Error(e.name === "TokenExpiredError" ? "token_expired" : "unauthorized"));
  }
});

io.on("connection", (socket) => {
  const user = socket.data.user;
  socket.join(`user:${user.sub}`);
  for (const room of user.rooms ?? []) socket.join(room);
  socket.emit("connected", { userId: user.sub, socketId: socket.id, rooms: user.rooms ?? [], timestamp: new Date().toISOString() });

  socket.on("room:join", (p, ack) => {
    if (!p || typeof p.conversationId !== "string") return ack?.({ success: false, message: "conversationId is missing" });
    socket.join(p.conversationId);
    ack?.({ success: true, message: `joined conversation ${p.conversationId}` });
  });

  socket.on("message:send", (p, ack) => {
    if (!p || typeof p.conversationId !== "string" || !socket.rooms.has(p.conversationId)) {
      socket.emit("error", { code: "not_member", message: "join the conversation first", timestamp: new Date().toISOString() });
      return ack?.({ success: false });
    }
    const message = {
      id: randomUUID(),
      conversationId: p.conversationId,
      senderId: user.sub,
      content: p.content,
      createdAt: new Date().toISOString(),
    };
    io.to(p.conversationId).emit("message:new", message);
    ack?.({ success: true, messageId: message.id });
  });
});

http.listen(port, "127.0.0.1", () => console.error(`reference socket.io server on ${port}, pid ${process.pid}`));
