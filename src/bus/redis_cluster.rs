//! The Redis bus on a Redis Cluster: the same deliveries, the same channel names (hash
//! tagged, `switchboard:{room:<id>}`, so each room is one slot), carried by sharded
//! pub/sub: `SPUBLISH` over redis-rs's cluster connection (routed to the slot's node),
//! and `SSUBSCRIBE` over a RESP3 cluster connection whose pushes come back on a channel;
//! redis-rs renews the shard subscriptions itself when a node or the topology changes.

use super::redis::{LISTENERS_WAIT, MAX_BACKOFF, Outgoing, RedisBus, RedisBusState, lock};
use super::wire::ALL;
use futures_util::future::join_all;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

impl RedisBus {
    /// Starts the bus on the cluster whose seed nodes are `nodes`.
    ///
    /// # Errors
    /// The node URLs are not Redis URLs (`tls`: what `rediss://` nodes are verified
    /// with and present).
    pub fn start_cluster(
        nodes: &[String],
        tls: Option<redis::TlsCertificates>,
        instance: &str,
        queue: usize,
    ) -> redis::RedisResult<RedisBus> {
        let (bus, out_rx, control_rx) = RedisBus::new(instance, queue);
        let (push_tx, push_rx) = mpsc::unbounded_channel::<PushInfo>();
        let builder = || {
            let b = ClusterClientBuilder::new(nodes.to_vec());
            match &tls {
                Some(certs) => b.certs(certs.clone()),
                None => b,
            }
        };
        let subscribing = builder()
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push_tx)
            .build()?;
        let publishing = builder().build()?;
        let shared = std::sync::Arc::downgrade(bus.shared());
        tokio::spawn(publisher(publishing, out_rx, shared.clone()));
        tokio::spawn(subscriber(subscribing, push_rx, control_rx, shared));
        Ok(bus)
    }
}

/// A cluster connection, retried with backoff until it comes.
async fn connect(client: &redis::cluster::ClusterClient, what: &str) -> ClusterConnection {
    let mut backoff = Duration::from_millis(50);
    loop {
        match client.get_async_connection().await {
            Ok(c) => return c,
            Err(e) => {
                tracing::warn!(
                    "redis cluster {what} connection failed ({e}); retrying in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Publishes queued deliveries with `SPUBLISH`, a batch at a time (the connection
/// pipelines them to each slot's node). What a node did not take is kept and sent again,
/// in order, with backoff, once this instance is subscribed again; the queue behind it
/// fills meanwhile, and once full new deliveries are refused to their senders.
async fn publisher(
    client: redis::cluster::ClusterClient,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Weak<RedisBusState>,
) {
    let conn = connect(&client, "publish").await;
    let mut batch = Vec::with_capacity(256);
    let mut backoff = Duration::from_millis(50);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut pending: Vec<(String, std::sync::Arc<Vec<u8>>)> = batch
            .drain(..)
            .flat_map(|(channels, bytes)| channels.into_iter().map(move |ch| (ch, bytes.clone())))
            .collect();
        while !pending.is_empty() {
            let sends = pending.iter().map(|(ch, bytes)| {
                let mut c = conn.clone();
                async move {
                    redis::cmd("SPUBLISH")
                        .arg(ch)
                        .arg(bytes.as_slice())
                        .query_async::<()>(&mut c)
                        .await
                }
            });
            let results = join_all(sends).await;
            let Some(sh) = shared.upgrade() else { return };
            let mut failed = results.iter().map(Result::is_err);
            let first_error = results
                .iter()
                .find_map(|r| r.as_ref().err())
                .map(ToString::to_string);
            pending.retain(|_| failed.next().unwrap_or(false));
            sh.publishing.store(pending.is_empty(), Ordering::Relaxed);
            if let Some(e) = first_error {
                tracing::warn!(
                    waiting = pending.len(),
                    "redis cluster publish failed ({e}); retrying in {backoff:?}"
                );
                drop(sh);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // The backlog goes out once this instance listens again, as the others
                // will about as soon.
                let until = tokio::time::Instant::now() + LISTENERS_WAIT;
                while tokio::time::Instant::now() < until
                    && !shared
                        .upgrade()
                        .is_some_and(|sh| sh.subscribed.load(Ordering::Relaxed))
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            } else {
                backoff = Duration::from_millis(50);
            }
        }
    }
}

/// Keeps the shard subscriptions to this instance's interests; reads the pushes.
async fn subscriber(
    client: redis::cluster::ClusterClient,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    mut control: mpsc::UnboundedReceiver<(String, bool)>,
    shared: Weak<RedisBusState>,
) {
    let mut conn = connect(&client, "pub/sub").await;
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(sh) = shared.upgrade() else { return };
        let mut chans: Vec<String> = lock(&sh.interests).iter().cloned().collect();
        chans.push(ALL.to_string());
        drop(sh);
        // One SSUBSCRIBE per channel: channels of different slots live on different nodes.
        let subscribed = join_all(chans.iter().map(|ch| {
            let mut c = conn.clone();
            async move { c.ssubscribe(ch).await }
        }))
        .await;
        if let Some(Err(e)) = subscribed.into_iter().find(Result::is_err) {
            tracing::warn!("redis cluster subscribe failed ({e}); retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        if let Some(sh) = shared.upgrade() {
            sh.subscribed.store(true, Ordering::Relaxed);
        }
        tracing::info!(
            channels = chans.len(),
            "redis cluster sharded pub/sub subscribed"
        );
        break;
    }
    loop {
        tokio::select! {
            c = control.recv() => {
                let Some((ch, on)) = c else { return };
                let r = if on { conn.ssubscribe(&ch).await } else { conn.sunsubscribe(&ch).await };
                if let Err(e) = r {
                    tracing::warn!(channel = %ch, "redis cluster (un)subscribe failed: {e}");
                }
            }
            p = pushes.recv() => {
                let Some(p) = p else { return };
                let Some(sh) = shared.upgrade() else { return };
                match p.kind {
                    PushKind::SMessage => {
                        if let Some(Value::BulkString(payload)) = p.data.get(1) {
                            sh.received(payload);
                        }
                    }
                    PushKind::Disconnection => {
                        // redis-rs reconnects and renews the subscriptions by itself.
                        sh.subscribed.store(false, Ordering::Relaxed);
                        tracing::warn!("redis cluster pub/sub connection lost; renewing");
                    }
                    PushKind::SSubscribe => sh.subscribed.store(true, Ordering::Relaxed),
                    _ => {}
                }
            }
        }
    }
}
