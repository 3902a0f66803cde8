//! The Engine.IO v4 / Socket.IO v5 wire format over WebSocket, shared by our Socket.IO
//! client (toward backends) and our own Socket.IO connections (from clients).

pub mod packet;
