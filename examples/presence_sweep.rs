//! The presence sweep at 100,000 online users in Redis: what one sweep costs when nothing
//! expired, when 1,000 and 10,000 connections expired (an instance died), and what one
//! refresh of an instance's 100,000 connections costs. Starts a `redis-server` of its
//! own on a free port (never the machine's). Not a test; run with
//! `cargo run --release --example presence_sweep [USERS]`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchboard::hub::{RedisStore, SocketPresence, Store, StoreLimits};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let users: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(async move {
        let url = format!("redis://127.0.0.1:{port}");
        let client = redis::Client::open(url.as_str())?;
        let mut raw = loop {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let conn = switchboard::bus::connection_manager(client)?;
        let store = Store::Redis(RedisStore::new(
            conn,
            StoreLimits {
                dedup_window: Duration::from_secs(300),
                message_ttl: Duration::from_secs(3600),
                max_entries: 1000,
                presence_ttl: Duration::from_secs(60),
                export_claims: 1000,
            },
        ));
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
    });
    let _ = redis.kill();
    let _ = redis.wait();
    r
}
