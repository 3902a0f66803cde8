//! Engine.IO v4 / Socket.IO v5 text packets: `40[/ns,]{…}` connect, `41` disconnect,
//! `42[/ns,][id][…]` event, `43[/ns,]id[…]` ack, `44[/ns,]{…}` connect error,
//! `45n-[/ns,][id][…]` binary event (the Engine.IO `4` message prefix included); parsed
//! as either side reads them, and built as a server writes them.

/// One Socket.IO packet, borrowing the frame's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Namespace joined.
    Connect {
        /// Namespace (`/` when absent).
        ns: &'a str,
        /// The JSON after it: `{"sid":…}` from a server, the `auth` object (or
        /// nothing) from a client.
        data: &'a str,
    },
    /// Namespace left.
    Disconnect {
        /// Namespace.
        ns: &'a str,
    },
    /// An event: its arguments as JSON array text.
    Event {
        /// Namespace.
        ns: &'a str,
        /// The ack id the sender asks for.
        ack: Option<u64>,
        /// `["name", …]`.
        args: &'a str,
    },
    /// An ack: its id and arguments.
    Ack {
        /// Namespace.
        ns: &'a str,
        /// The ack id.
        id: u64,
        /// The arguments, a JSON array.
        args: &'a str,
    },
    /// An event with binary attachments (`n` binary frames follow it).
    BinaryEvent {
        /// Namespace.
        ns: &'a str,
        /// The ack id the sender asks for.
        ack: Option<u64>,
        /// How many binary frames follow.
        attachments: usize,
    },
    /// The namespace refused us.
    ConnectError {
        /// Namespace.
        ns: &'a str,
        /// Its message.
        message: String,
    },
}

/// Parses one Engine.IO message frame carrying a Socket.IO packet.
pub fn parse(frame: &str) -> Option<Packet<'_>> {
    let rest = frame.strip_prefix('4')?;
    let kind = rest.as_bytes().first().copied()?;
    let mut rest = &rest[1..];
    // Binary packets (5: event, 6: ack) count their attachments first: `5<n>-`.
    let mut attachments = 0;
    if matches!(kind, b'5' | b'6') {
        let dash = rest.find('-')?;
        attachments = rest[..dash].parse::<usize>().ok()?;
        rest = &rest[dash + 1..];
    }
    let mut ns = "/";
    if rest.starts_with('/') {
        let comma = rest.find(',').unwrap_or(rest.len());
        ns = &rest[..comma];
        rest = rest.get(comma + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        rest[..digits].parse::<u64>().ok()
    } else {
        None
    };
    let body = &rest[digits..];
    Some(match kind {
        b'0' => Packet::Connect { ns, data: body },
        b'1' => Packet::Disconnect { ns },
        b'2' => Packet::Event {
            ns,
            ack: id,
            args: body,
        },
        b'3' => Packet::Ack {
            ns,
            id: id?,
            args: body,
        },
        b'4' => Packet::ConnectError {
            ns,
            message: serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| body.to_string()),
        },
        b'5' => Packet::BinaryEvent {
            ns,
            ack: id,
            attachments,
        },
        _ => return None,
    })
}

/// `4<kind>[/ns,]`: a message packet's head for a namespace.
fn head(kind: char, ns: &str) -> String {
    let mut s = String::with_capacity(ns.len() + 48);
    s.push('4');
    s.push(kind);
    if ns != "/" {
        s.push_str(ns);
        s.push(',');
    }
    s
}

/// The server's answer to a namespace connect: `40[/ns,]{"sid":…}`.
pub fn connected(ns: &str, sid: &str) -> String {
    let mut s = head('0', ns);
    s.push_str(&serde_json::json!({ "sid": sid }).to_string());
    s
}

/// A refused namespace connect: `44[/ns,]{"message":…}`.
pub fn connect_error(ns: &str, message: &str) -> String {
    let mut s = head('4', ns);
    s.push_str(&serde_json::json!({ "message": message }).to_string());
    s
}

/// A namespace left: `41[/ns,]`.
pub fn disconnect(ns: &str) -> String {
    head('1', ns)
}

/// An ack: `43[/ns,]<id>[value]`.
pub fn ack(ns: &str, id: u64, value: &serde_json::Value) -> String {
    let mut s = head('3', ns);
    s.push_str(&id.to_string());
    s.push('[');
    s.push_str(&value.to_string());
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_packet_kind_parses() {
        assert_eq!(
            parse(r#"40{"sid":"x"}"#),
            Some(Packet::Connect {
                ns: "/",
                data: r#"{"sid":"x"}"#
            })
        );
        assert_eq!(
            parse(r#"40/ws/app,{"sid":"x"}"#),
            Some(Packet::Connect {
                ns: "/ws/app",
                data: r#"{"sid":"x"}"#
            })
        );
        assert_eq!(
            parse("40/ws/app,"),
            Some(Packet::Connect {
                ns: "/ws/app",
                data: ""
            })
        );
        assert_eq!(
            parse(r#"451-/ws/app,7["up",{"_placeholder":true,"num":0}]"#),
            Some(Packet::BinaryEvent {
                ns: "/ws/app",
                ack: Some(7),
                attachments: 1
            })
        );
        assert_eq!(
            parse(r#"452-["up"]"#),
            Some(Packet::BinaryEvent {
                ns: "/",
                ack: None,
                attachments: 2
            })
        );
        assert_eq!(parse("45x-[]"), None);
        assert_eq!(
            parse("41/ws/app,"),
            Some(Packet::Disconnect { ns: "/ws/app" })
        );
        assert_eq!(
            parse(r#"42["a",{"b":1}]"#),
            Some(Packet::Event {
                ns: "/",
                ack: None,
                args: r#"["a",{"b":1}]"#
            })
        );
        assert_eq!(
            parse(r#"42/ws/app,17["a"]"#),
            Some(Packet::Event {
                ns: "/ws/app",
                ack: Some(17),
                args: r#"["a"]"#
            })
        );
        assert_eq!(
            parse(r#"4312[{"ok":true}]"#),
            Some(Packet::Ack {
                ns: "/",
                id: 12,
                args: r#"[{"ok":true}]"#
            })
        );
        assert_eq!(
            parse(r#"44{"message":"unauthorized"}"#),
            Some(Packet::ConnectError {
                ns: "/",
                message: "unauthorized".into()
            })
        );
        assert_eq!(parse("2"), None);
        assert_eq!(parse("4"), None);
        assert_eq!(parse("43[]"), None);
    }

    #[test]
    fn server_packets_name_their_namespace_except_the_root() {
        assert_eq!(connected("/", "a"), r#"40{"sid":"a"}"#);
        assert_eq!(connected("/ws/app", "a"), r#"40/ws/app,{"sid":"a"}"#);
        assert_eq!(disconnect("/"), "41");
        assert_eq!(disconnect("/x"), "41/x,");
        assert_eq!(
            connect_error("/x", "Invalid namespace"),
            r#"44/x,{"message":"Invalid namespace"}"#
        );
        assert_eq!(
            ack("/", 3, &serde_json::json!({"ok": true})),
            r#"433[{"ok":true}]"#
        );
        assert_eq!(ack("/x", 0, &serde_json::json!(1)), "43/x,0[1]");
    }
}
