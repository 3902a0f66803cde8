//! Admitting a client's frame: the size limit and the rate limit, then decoding in the
//! client's dialect into canonical events, each counted. What is refused reaches the
//! client in its dialect (and is counted), and its ack payload is returned.

use crate::dialect::{Decoded, Direction};
use crate::hub::{Ack, CLOSE_RATE_LIMIT, Conn, ErrorCode, Hub, Rate, Refusal};
use crate::telemetry::{EventLabels, Name, ReasonLabels};
use std::sync::Arc;

/// The frame's events, or the ack of its refusal.
///
/// # Errors
/// Over `limits.max_payload` or the rate limit, or not decodable in the dialect.
pub(super) fn admit(hub: &Hub, conn: &Arc<Conn>, text: &[u8]) -> Result<Decoded, Ack> {
    let s = hub.settings();
    if text.len() > s.max_payload {
        let r = Refusal::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "event of {} bytes is over the {}-byte limit",
                text.len(),
                s.max_payload
            ),
        );
        return Err(hub.refuse(conn, &r));
    }
    match conn.take_token(s.rate, s.burst, s.rate_strikes) {
        Rate::Ok => {}
        Rate::Refuse => {
            let r = Refusal::new(
                ErrorCode::RateLimited,
                format!("more than {} events per second: slow down", s.rate),
            );
            return Err(hub.refuse(conn, &r));
        }
        Rate::Close => {
            let r = Refusal::new(
                ErrorCode::RateLimited,
                "persistently over the event rate: disconnecting",
            );
            let ack = hub.refuse(conn, &r);
            tracing::warn!(conn = conn.id, user = %conn.user.id, "closed for sending too fast");
            conn.close(CLOSE_RATE_LIMIT, "rate limit");
            return Err(ack);
        }
    }
    conn.seen(crate::event::now_millis());
    let reg = hub.registry();
    let Some(dialect) = reg.dialect(&conn.dialect) else {
        return Err(hub.refuse(
            conn,
            &Refusal::new(ErrorCode::Unavailable, "dialect unloaded"),
        ));
    };
    let events = match dialect.decode_frame(
        text,
        Some(Direction::Up),
        &conn.decode_context(hub.instance()),
    ) {
        Ok(evs) => evs,
        Err(e) => {
            tracing::debug!(conn = conn.id, dialect = %conn.dialect, error = %e, "refused frame");
            hub.metrics()
                .translation_failures
                .get_or_create(&ReasonLabels {
                    dialect: Name(conn.dialect.clone()),
                    reason: e.code(),
                })
                .inc();
            return Err(hub.refuse(conn, &Refusal::from(&e)));
        }
    };
    drop(reg);
    for ev in &events {
        hub.metrics()
            .events_in
            .get_or_create(&EventLabels {
                dialect: Name(conn.dialect.clone()),
                event: Name(ev.name.clone()),
            })
            .inc();
        tracing::trace!(trace_id = %ev.meta.trace_id, event = %ev.name, dialect = %conn.dialect, user = %conn.user.id, "event in");
    }
    Ok(events)
}
