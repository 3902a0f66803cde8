//! Socket.IO (v5 over Engine.IO v4): the wire format both sides share (`packet`), and
//! our client toward Socket.IO backends and for the bench (`client`, WebSocket transport
//! only). The server side is in `listen::socketio`.

pub mod client;
pub mod packet;
