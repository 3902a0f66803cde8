//! A `redis-server` of an example's own, on a free port (never the machine's), stopped
//! when dropped; and the Redis store the hub would use on it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchboard::hub::{RedisStore, Store, StoreLimits};

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
}

impl RedisServer {
    /// Starts one and waits until it answers.
    pub async fn start() -> anyhow::Result<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()?;
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let client = redis::Client::open(server.url.as_str())?;
        while client.get_multiplexed_async_connection().await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(server)
    }

    /// The hub's Redis store on it, presence living `presence_ttl`.
    #[allow(dead_code)] // Not every example uses it.
    pub fn store(&self, presence_ttl: Duration) -> anyhow::Result<Store> {
        let conn = switchboard::bus::connection_manager(redis::Client::open(self.url.as_str())?)?;
        Ok(Store::Redis(RedisStore::new(
            conn,
            StoreLimits {
                dedup_window: Duration::from_secs(300),
                content_dedup_window: Duration::from_secs(5),
                message_ttl: Duration::from_secs(3600),
                max_entries: 1000,
                presence_ttl,
                export_claims: 1000,
            },
        )))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
