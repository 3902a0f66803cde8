// A Salala-style legacy backend on Node's own socket.io (seed 003), for the tests that
// front a Socket.IO server not written in Rust. Usage: node backend.mjs <secret> [port]
// Prints {"port": N} once listening. Tokens: HS256 in the `token` query parameter.
import { createServer } from "node:http";
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { Server } from "socket.io";

const [secret, port] = [process.argv[2], Number(process.argv[3] ?? 0)];

function verify(token) {
  const [h, p, s] = String(token ?? "").replace(/^Bearer /, "").split(".");
  if (!s) return null;
  const want = createHmac("sha256", secret).update(`${h}.${p}`).digest();
  const got = Buffer.from(s, "base64url");
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  const claims = JSON.parse(Buffer.from(p, "base64url").toString());
  if (claims.exp && claims.exp < Date.now() / 1000) return null;
  return claims;
}

const http = createServer();
const io = new Server(http, { cors: { origin: "*" } });
io.use((socket, next) => {
  const claims = verify(socket.handshake.query.token);
  if (!claims) return next(new Error("unauthorized: invalid token"));
  socket.data.userId = claims.userId ?? claims.sub;
  next();
});
io.on("connection", (socket) => {
  const me = socket.data.userId;
  socket.join(me);
  io.emit("userStatusChanged", { userId: me, status: "online" });
  socket.on("joinRoom", ({ conversationId }, ack) => {
    socket.join(conversationId);
    if (typeof ack === "function") ack({ joined: conversationId });
  });
  socket.on("sendMessage", (d, ack) => {
    if (!d?.content || d.conversationId === "forbidden") {
      socket.emit("exception", { status: "error", message: "Unauthorized to send message to this room" });
      return;
    }
    const msg = { id: randomUUID(), conversationId: d.conversationId, senderId: me, content: d.content, createdAt: new Date().toISOString() };
    io.to(d.conversationId).emit("newMessage", msg);
    if (typeof ack === "function") ack(msg);
  });
  socket.on("typing", ({ conversationId }) => socket.to(conversationId).emit("userTyping", { userId: me, conversationId }));
  socket.on("stopTyping", ({ conversationId }) => socket.to(conversationId).emit("userStopTyping", { userId: me, conversationId }));
  socket.on("disconnect", () => io.emit("userStatusChanged", { userId: me, status: "offline" }));
});
http.listen(port, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: http.address().port }) + "\n");
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
