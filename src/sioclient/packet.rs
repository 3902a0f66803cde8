//! Engine.IO v4 / Socket.IO v5 text packets, as a client reads them: `40[/ns,]{…}`
//! connect, `41` disconnect, `42[/ns,][id][…]` event, `43[/ns,]id[…]` ack, `44[/ns,]{…}`
//! connect error (the Engine.IO `4` message prefix included).

/// One Socket.IO packet, borrowing the frame's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Namespace joined.
    Connect {
        /// Namespace (`/` when absent).
        ns: &'a str,
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
        b'0' => Packet::Connect { ns },
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
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_packet_kind_parses() {
        assert_eq!(parse(r#"40{"sid":"x"}"#), Some(Packet::Connect { ns: "/" }));
        assert_eq!(
            parse(r#"40/ws/app,{"sid":"x"}"#),
            Some(Packet::Connect { ns: "/ws/app" })
        );
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
}
