//! The hub without a socket: connections whose outlet is a vector in memory, intents
//! handed to the hub as canonical events, and what each connection was sent read back in
//! its dialect. (axum's examples test a handler against a sink the same way.)

use serde_json::json;
use std::sync::{Arc, Mutex};
use switchboard::bus::LocalBus;
use switchboard::config::{Config, Transport};
use switchboard::event::{Event, UserRef};
use switchboard::hub::{
    Hub, LocalStore, NewConn, OutFrame, Outlet, Registration, SendFailure, Store, StoreLimits,
};

/// An outlet that keeps what it is sent, and how it was closed.
#[derive(Clone, Default)]
struct Memory {
    frames: Arc<Mutex<Vec<OutFrame>>>,
    closed: Arc<Mutex<Option<(u16, String)>>>,
    capacity: Option<usize>,
}

impl Outlet for Memory {
    fn send(&self, frame: &OutFrame) -> Result<(), SendFailure> {
        let mut f = self.frames.lock().expect("frames");
        if self.capacity.is_some_and(|c| f.len() >= c) {
            return Err(SendFailure::Full);
        }
        f.push(frame.clone());
        Ok(())
    }

    fn close(&self, code: u16, reason: &str) {
        *self.closed.lock().expect("closed") = Some((code, reason.to_string()));
    }
}

impl Memory {
    /// The wire names received, in order.
    fn names(&self) -> Vec<String> {
        self.frames
            .lock()
            .expect("frames")
            .iter()
            .map(|f| f.name.to_string())
            .collect()
    }
}

fn hub() -> Hub {
    let cfg = Config::from_toml(switchboard::config::DEFAULT_TOML).expect("default");
    let limits = StoreLimits {
        dedup_window: cfg.hub.dedup_window,
        content_dedup_window: cfg.hub.content_dedup_window,
        message_ttl: cfg.hub.message_ttl,
        max_entries: cfg.hub.message_index,
        presence_ttl: cfg.hub.presence_ttl,
        export_claims: cfg.hub.export_claims,
    };
    Hub::new(
        &cfg,
        "memory",
        crate::live::registry(),
        Arc::new(LocalBus::new()),
        Store::Local(Box::new(LocalStore::new(limits))),
    )
}

async fn connect(
    hub: &Hub,
    dialect: &str,
    user: &str,
    rooms: &[&str],
    out: &Memory,
) -> Registration {
    hub.connect(NewConn {
        dialect: Arc::from(dialect),
        transport: Transport::Socketio,
        socket_id: None,
        user: UserRef {
            id: user.into(),
            name: None,
            image: None,
        },
        claims: Some(rooms.iter().map(|r| r.to_string()).collect()),
        user_agent: None,
        ip: None,
        outlet: Box::new(out.clone()),
        member: true,
        upstream: None,
        cancel: None,
        recovery: None,
    })
    .await
    .expect("registered")
}

#[tokio::test]
async fn a_message_reaches_the_room_in_each_dialect_and_the_sender_is_answered() {
    let hub = hub();
    let (a_out, b_out) = (Memory::default(), Memory::default());
    let a = connect(&hub, "chat-service", "ann", &["r1"], &a_out).await;
    let _b = connect(&hub, "salala", "bob", &["r1"], &b_out).await;
    let body = json!({"conversationId": "r1", "content": "in memory", "clientRef": "t1"});
    let ack = hub
        .handle_event(
            a.conn(),
            &Event::new(
                "message.send",
                body.as_object().cloned().unwrap_or_default(),
            ),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    // Bob hears it in Salala's words, Ann in Chat Service's (and her confirmation).
    assert!(
        b_out.names().contains(&"newMessage".to_string()),
        "{:?}",
        b_out.names()
    );
    assert!(
        a_out.names().contains(&"message:new".to_string()),
        "{:?}",
        a_out.names()
    );
    // A retry of the same clientRef is not broadcast again.
    let before = b_out.names().len();
    let again = hub
        .handle_event(
            a.conn(),
            &Event::new(
                "message.send",
                body.as_object().cloned().unwrap_or_default(),
            ),
        )
        .await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(b_out.names().len(), before);
}

#[tokio::test]
async fn a_full_outlet_is_cut_as_a_slow_consumer_and_the_others_go_on() {
    let hub = hub();
    let slow = Memory {
        capacity: Some(1),
        ..Memory::default()
    };
    let (a_out, c_out) = (Memory::default(), Memory::default());
    let a = connect(&hub, "chat-service", "ann", &["r2"], &a_out).await;
    let _s = connect(&hub, "salala", "slow", &["r2"], &slow).await;
    let _c = connect(&hub, "salala", "cid", &["r2"], &c_out).await;
    for i in 0..3 {
        let body = json!({"conversationId": "r2", "content": format!("m{i}")});
        hub.handle_event(
            a.conn(),
            &Event::new(
                "message.send",
                body.as_object().cloned().unwrap_or_default(),
            ),
        )
        .await;
    }
    let closed = slow.closed.lock().expect("closed").clone();
    assert_eq!(closed.map(|c| c.0), Some(1008), "the slow consumer is cut");
    let got = c_out.names().iter().filter(|n| *n == "newMessage").count();
    assert_eq!(got, 3, "the others get every message");
}
