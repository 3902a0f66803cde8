//! Engine.IO v4 / Socket.IO v5 text packets: `40[/ns,]{…}` connect, `41` disconnect,
//! `42[/ns,][id][…]` event, `43[/ns,]id[…]` ack, `44[/ns,]{…}` connect error,
//! `45n-[/ns,][id][…]` binary event (the Engine.IO `4` message prefix included); parsed
//! as either side reads them, and built as a server writes them. Long for one idea: the
//! packet grammar, its reader and its writers side by side, and their tests.

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
    /// A binary ack (`6n-…`): acks of binary emits, which nobody here makes.
    BinaryAck {
        /// Namespace.
        ns: &'a str,
    },
    /// The namespace refused us.
    ConnectError {
        /// Namespace.
        ns: &'a str,
        /// Its message.
        message: String,
    },
}

/// Why a frame is not a Socket.IO packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Not an Engine.IO message (`4…`), or a message with no Socket.IO type.
    #[error("not a Socket.IO packet (an Engine.IO message is `4` then a packet type)")]
    NotMessage,
    /// A packet type Socket.IO v5 does not have.
    #[error("unknown Socket.IO packet type")]
    UnknownType,
    /// A binary packet whose attachment count is missing or not a number.
    #[error("binary packet without a valid attachment count (`5<n>-`)")]
    BadAttachments,
    /// An ack id that is not a number below 2^64.
    #[error("ack id out of range (at most 18446744073709551615)")]
    AckIdOutOfRange,
    /// An ack packet without its id.
    #[error("ack packet without an id")]
    MissingAckId,
}

/// Parses one Engine.IO message frame carrying a Socket.IO packet. Total: any text gives
/// a packet or the reason it is none (the frame is only ever split at ASCII bytes).
///
/// # Errors
/// The frame is not a Socket.IO v5 packet ([`PacketError`]).
pub fn parse(frame: &str) -> Result<Packet<'_>, PacketError> {
    let bytes = frame.as_bytes();
    if bytes.first() != Some(&b'4') {
        return Err(PacketError::NotMessage);
    }
    let kind = *bytes.get(1).ok_or(PacketError::NotMessage)?;
    if !(b'0'..=b'6').contains(&kind) {
        return Err(PacketError::UnknownType);
    }
    // Both bytes are ASCII: index 2 is a char boundary.
    let mut rest = &frame[2..];
    // Binary packets (5: event, 6: ack) count their attachments first: `5<n>-`.
    let mut attachments = 0;
    if matches!(kind, b'5' | b'6') {
        let dash = rest.find('-').ok_or(PacketError::BadAttachments)?;
        attachments = rest[..dash]
            .parse::<usize>()
            .map_err(|_| PacketError::BadAttachments)?;
        rest = &rest[dash + 1..];
    }
    let (ns, rest) = split_namespace(rest);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|_| PacketError::AckIdOutOfRange)?,
        )
    } else {
        None
    };
    let body = &rest[digits..];
    Ok(match kind {
        b'0' => Packet::Connect { ns, data: body },
        b'1' => Packet::Disconnect { ns },
        b'2' => Packet::Event {
            ns,
            ack: id,
            args: body,
        },
        b'3' => Packet::Ack {
            ns,
            id: id.ok_or(PacketError::MissingAckId)?,
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
        // A binary ack: what only a server's ack of our binary emit would be.
        _ => Packet::BinaryAck { ns },
    })
}

/// `/ns,rest` → (`/ns`, `rest`); anything else is the root namespace's.
fn split_namespace(rest: &str) -> (&str, &str) {
    if !rest.starts_with('/') {
        return ("/", rest);
    }
    let comma = rest.find(',').unwrap_or(rest.len());
    (&rest[..comma], rest.get(comma + 1..).unwrap_or(""))
}

/// The namespace a frame names, as far as it can be read (`/` when it names none): to
/// answer a packet that does not parse in its namespace's dialect.
pub fn namespace_of(frame: &str) -> &str {
    let Some(mut rest) = frame.strip_prefix('4').and_then(|r| r.get(1..)) else {
        return "/";
    };
    if let Some(dash) = rest.find('-')
        && rest[..dash].bytes().all(|b| b.is_ascii_digit())
    {
        rest = &rest[dash + 1..];
    }
    split_namespace(rest).0
}

/// The event a long-polling packet whose ack id is out of range is turned into before
/// socketioxide reads it (which would read such an id as none, and run the event without
/// an ack): the connection then refuses it as `bad_event`. (A client sending this name
/// itself is refused the same way. It holds no escape: socketioxide reads event names
/// borrowed, and closes a session whose event name has one.)
pub const ACK_OUT_OF_RANGE: &str = "switchboard:ack-id-out-of-range";

/// The largest ack id socketioxide reads (its ids are `i64`); ours are `u64`.
const SOCKETIOXIDE_MAX_ACK: u64 = i64::MAX as u64;

/// A Socket.IO packet of a polling body (without the Engine.IO `4`) whose event's ack id
/// socketioxide cannot read, rewritten as the [`ACK_OUT_OF_RANGE`] event of its
/// namespace; `None` for every other packet (left as it is).
pub fn neutralize_ack(packet: &str) -> Option<String> {
    let framed = format!("4{packet}");
    let ns = match parse(&framed) {
        Err(PacketError::AckIdOutOfRange) if packet.starts_with('2') => namespace_of(&framed),
        Ok(Packet::Event {
            ns, ack: Some(id), ..
        }) if id > SOCKETIOXIDE_MAX_ACK => ns,
        _ => return None,
    };
    let mut s = head('2', ns);
    s.remove(0);
    s.push_str("[\"");
    s.push_str(ACK_OUT_OF_RANGE);
    s.push_str("\"]");
    Some(s)
}

/// A long-polling request body (Engine.IO packets separated by `\x1e`) with every
/// Socket.IO event whose ack id socketioxide cannot read neutralized (see
/// [`neutralize_ack`]); `None` when it has none (the body is passed on as it is).
pub fn neutralize_polling_body(body: &str) -> Option<String> {
    let mut changed = false;
    let packets: Vec<std::borrow::Cow<'_, str>> = body
        .split('\u{1e}')
        .map(|p| match p.strip_prefix('4').and_then(neutralize_ack) {
            Some(n) => {
                changed = true;
                std::borrow::Cow::Owned(format!("4{n}"))
            }
            None => std::borrow::Cow::Borrowed(p),
        })
        .collect();
    changed.then(|| packets.join("\u{1e}"))
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
    connected_with(ns, sid, None)
}

/// A namespace connect answer with a private session id (`40{"sid":…,"pid":…}`):
/// the client sends `pid` and its last offset back to recover its session.
pub fn connected_with(ns: &str, sid: &str, pid: Option<&str>) -> String {
    let mut s = head('0', ns);
    let v = match pid {
        Some(pid) => serde_json::json!({ "sid": sid, "pid": pid }),
        None => serde_json::json!({ "sid": sid }),
    };
    s.push_str(&v.to_string());
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

/// An event of the root namespace: `42["name",payload]` (`42["name"]` without one).
pub fn event(name: &str, payload: Option<&serde_json::Value>) -> String {
    event_at(name, payload, None)
}

/// An event packet whose last argument is its history offset (`42["name",payload,
/// "offset"]`), as a socket.io 4.6+ server with connection state recovery sends what
/// it broadcasts; `None`: a plain event packet.
pub fn event_at(name: &str, payload: Option<&serde_json::Value>, offset: Option<&str>) -> String {
    let mut s = String::with_capacity(64);
    s.push_str("42[");
    // A string and a JSON value always serialise.
    s.push_str(&serde_json::to_string(name).unwrap_or_default());
    if let Some(p) = payload {
        s.push(',');
        s.push_str(&serde_json::to_string(p).unwrap_or_default());
    }
    if let Some(o) = offset {
        if payload.is_none() {
            // The offset must be the last argument, and the payload the first.
            s.push_str(",null");
        }
        s.push(',');
        s.push_str(&serde_json::to_string(o).unwrap_or_default());
    }
    s.push(']');
    s
}

/// `frame` (an event packet of the root namespace, `42…`) for namespace `ns`.
pub fn in_namespace(frame: &[u8], ns: &str) -> Vec<u8> {
    if ns == "/" || frame.len() < 2 {
        return frame.to_vec();
    }
    let mut s = Vec::with_capacity(frame.len() + ns.len() + 1);
    s.extend_from_slice(&frame[..2]);
    s.extend_from_slice(ns.as_bytes());
    s.push(b',');
    s.extend_from_slice(&frame[2..]);
    s
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
            Ok(Packet::Connect {
                ns: "/",
                data: r#"{"sid":"x"}"#
            })
        );
        assert_eq!(
            parse(r#"40/ws/app,{"sid":"x"}"#),
            Ok(Packet::Connect {
                ns: "/ws/app",
                data: r#"{"sid":"x"}"#
            })
        );
        assert_eq!(
            parse("40/ws/app,"),
            Ok(Packet::Connect {
                ns: "/ws/app",
                data: ""
            })
        );
        assert_eq!(
            parse(r#"451-/ws/app,7["up",{"_placeholder":true,"num":0}]"#),
            Ok(Packet::BinaryEvent {
                ns: "/ws/app",
                ack: Some(7),
                attachments: 1
            })
        );
        assert_eq!(
            parse(r#"452-["up"]"#),
            Ok(Packet::BinaryEvent {
                ns: "/",
                ack: None,
                attachments: 2
            })
        );
        assert_eq!(parse("45x-[]"), Err(PacketError::BadAttachments));
        assert_eq!(
            parse("41/ws/app,"),
            Ok(Packet::Disconnect { ns: "/ws/app" })
        );
        assert_eq!(
            parse(r#"42["a",{"b":1}]"#),
            Ok(Packet::Event {
                ns: "/",
                ack: None,
                args: r#"["a",{"b":1}]"#
            })
        );
        assert_eq!(
            parse(r#"42/ws/app,17["a"]"#),
            Ok(Packet::Event {
                ns: "/ws/app",
                ack: Some(17),
                args: r#"["a"]"#
            })
        );
        assert_eq!(
            parse(r#"4312[{"ok":true}]"#),
            Ok(Packet::Ack {
                ns: "/",
                id: 12,
                args: r#"[{"ok":true}]"#
            })
        );
        assert_eq!(
            parse(r#"44{"message":"unauthorized"}"#),
            Ok(Packet::ConnectError {
                ns: "/",
                message: "unauthorized".into()
            })
        );
        assert_eq!(parse("2"), Err(PacketError::NotMessage));
        assert_eq!(parse("4"), Err(PacketError::NotMessage));
        assert_eq!(parse("43[]"), Err(PacketError::MissingAckId));
        assert_eq!(parse("47[]"), Err(PacketError::UnknownType));
        assert_eq!(
            namespace_of("42/ws/app,99999999999999999999999[]"),
            "/ws/app"
        );
        assert_eq!(namespace_of("451-/x,[]"), "/x");
        assert_eq!(namespace_of("4é"), "/");
        assert_eq!(namespace_of(""), "/");
        assert_eq!(parse("4é"), Err(PacketError::UnknownType));
        assert_eq!(
            parse("42/é"),
            Ok(Packet::Event {
                ns: "/é",
                ack: None,
                args: ""
            })
        );
        assert_eq!(
            parse(r#"4218446744073709551616["a"]"#),
            Err(PacketError::AckIdOutOfRange)
        );
        assert_eq!(
            parse(r#"4218446744073709551615["a"]"#),
            Ok(Packet::Event {
                ns: "/",
                ack: Some(u64::MAX),
                args: r#"["a"]"#
            })
        );
    }

    #[test]
    fn polling_packets_with_unreadable_ack_ids_are_neutralized() {
        assert_eq!(
            neutralize_ack(r#"2/ws/app,99999999999999999999999["a"]"#).as_deref(),
            Some(r#"2/ws/app,["switchboard:ack-id-out-of-range"]"#)
        );
        assert_eq!(
            neutralize_ack(r#"29223372036854775808["a"]"#).as_deref(),
            Some(r#"2["switchboard:ack-id-out-of-range"]"#)
        );
        assert_eq!(neutralize_ack(r#"29223372036854775807["a"]"#), None);
        assert_eq!(neutralize_ack(r#"2["a"]"#), None);
        assert_eq!(neutralize_ack("0"), None);
        assert_eq!(
            neutralize_polling_body("42[\"a\"]\u{1e}4299999999999999999999[\"b\"]").as_deref(),
            Some("42[\"a\"]\u{1e}42[\"switchboard:ack-id-out-of-range\"]")
        );
        assert_eq!(neutralize_polling_body("42[\"a\"]\u{1e}2"), None);
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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Any text (multi-byte characters included) parses or is refused: no panic.
        #[test]
        fn any_text_parses_or_is_refused(s in any::<String>()) {
            let _ = parse(&s);
            let _ = namespace_of(&s);
            let _ = namespace_of(&format!("45{s}"));
            let _ = neutralize_ack(&s);
            let _ = neutralize_ack(&format!("2{s}"));
            let _ = neutralize_polling_body(&s);
            let _ = parse(&format!("4{s}"));
            let _ = parse(&format!("42{s}"));
            let _ = parse(&format!("45{s}"));
        }

        /// Any bytes, read as the text a WebSocket would hand over.
        #[test]
        fn any_bytes_parse_or_are_refused(b in prop::collection::vec(any::<u8>(), 0..64)) {
            let s = String::from_utf8_lossy(&b);
            let _ = parse(&s);
        }

        /// Packet-shaped text: a type, a namespace, an ack id of any length, a body.
        #[test]
        fn packet_shaped_text_parses_or_is_refused(
            kind in "[0-9]", ns in "(/[a-zé/]{0,6},)?", id in "[0-9]{0,24}", body in "[^0-9]{0,16}"
        ) {
            let frame = format!("4{kind}{ns}{id}[{body}");
            if let (Ok(Packet::Event { ack: Some(a), .. }), Ok(want)) = (parse(&frame), id.parse::<u64>()) {
                prop_assert_eq!(a, want);
            }
        }
    }
}
