//! The presence sweep at 100,000 online users in Redis: what one sweep costs when nothing
//! expired, when 1,000 and 10,000 connections expired (an instance died), and what one
//! refresh of an instance's 100,000 connections costs. Starts a `redis-server` of its
//! own on a free port (never the machine's). Not a test; run with
//! `cargo run --release --example presence_sweep [USERS]`.

use std::time::{Duration, Instant};
use switchboard::hub::SocketPresence;

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let users: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = RedisServer::start().await?;
        let mut raw = redis::Client::open(server.url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        let store = server.store(Duration::from_secs(60))?;
        let snaps: Vec<(String, SocketPresence)> = (0..users)
            .map(|i| {
                (
                    format!("user-{i}"),
                    SocketPresence {
                        socket_id: format!("sock-{i}").into(),
                        connected_at: 0,
                        last_seen: 0,
                        ..SocketPresence::default()
                    },
                )
            })
            .collect();
        let refs: Vec<(&str, &SocketPresence)> =
            snaps.iter().map(|(u, s)| (u.as_str(), s)).collect();
        let mut refresh = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            store.presence_refresh_many(&refs).await?;
            refresh.push(t.elapsed());
        }
        let mut idle = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let gone = store.presence_expire().await?;
            idle.push(t.elapsed());
            anyhow::ensure!(gone.is_empty(), "nothing expired yet");
        }
        let mut expired = Vec::new();
        for (from, n) in [(0usize, 1_000usize), (1_000, 10_000)] {
            // An instance died: its connections' expiry is in the past.
            let mut p = redis::pipe();
            for i in from..from + n {
                p.cmd("ZADD")
                    .arg("presence:expiry")
                    .arg(1)
                    .arg(serde_json::json!([format!("user-{i}"), format!("sock-{i}")]).to_string())
                    .ignore();
            }
            p.query_async::<()>(&mut raw).await?;
            let t = Instant::now();
            let gone = store.presence_expire().await?;
            expired.push((n, gone.len(), t.elapsed()));
        }
        let online: usize = redis::cmd("SCARD")
            .arg("online_users")
            .query_async(&mut raw)
            .await?;
        println!(
            "{{\"online_users\": {users}, \"refresh_all_ms\": {:.1}, \"sweep_nothing_expired_ms\": {:.3}, {}, \"online_after\": {online}}}",
            median(refresh).as_secs_f64() * 1e3,
            median(idle).as_secs_f64() * 1e3,
            expired
                .iter()
                .map(|(n, gone, t)| format!(
                    "\"sweep_{n}_expired_ms\": {:.1}, \"offline_{n}\": {gone}",
                    t.as_secs_f64() * 1e3
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        anyhow::Ok(())
    })
}
