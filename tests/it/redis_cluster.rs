//! Redis Cluster as a configuration change (issue 4): a real three-node cluster of
//! redis-server processes started by the test (ports found free, data in a temporary
//! directory, killed at the end), two instances with `redis.cluster` set: deliveries
//! cross them by sharded pub/sub (SPUBLISH/SSUBSCRIBE, checked with PUBSUB SHARDNUMSUB on
//! the nodes), while the state stays on the standalone Redis at `redis.url`.

use crate::live::unique;

use crate::live::{Client, Driver, Live};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchboard::config::BusKind;

/// Three cluster nodes, killed when dropped.
struct Cluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    _dir: std::path::PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

/// A port free both itself and at +10000 (the cluster bus port).
fn free_ports(n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    let mut p = 20_000 + (std::process::id() % 5_000) as u16;
    while out.len() < n {
        p += 1;
        let ok = std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok();
        if ok {
            out.push(p);
        }
    }
    out
}

fn start_cluster() -> Cluster {
    let dir = std::env::temp_dir().join(format!("switchboard-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ports = free_ports(3);
    let nodes = ports
        .iter()
        .map(|p| {
            Command::new("redis-server")
                .args([
                    "--port",
                    &p.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{p}.conf"),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server runs (scripts/test installs it)")
        })
        .collect();
    let cluster = Cluster {
        nodes,
        ports: ports.clone(),
        _dir: dir,
    };
    for p in &ports {
        for _ in 0..100 {
            let up = Command::new("redis-cli")
                .args(["-p", &p.to_string(), "ping"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"));
            if up {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let out = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "cluster create: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for _ in 0..200 {
        let ok = ports.iter().all(|p| {
            Command::new("redis-cli")
                .args(["-p", &p.to_string(), "cluster", "info"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
        });
        if ok {
            return cluster;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the cluster did not come up");
}

/// Subscribers of a sharded channel, summed over the nodes.
fn shard_subscribers(ports: &[u16], channel: &str) -> usize {
    ports
        .iter()
        .map(|p| {
            let out = Command::new("redis-cli")
                .args(["-p", &p.to_string(), "pubsub", "shardnumsub", channel])
                .output()
                .expect("redis-cli");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .nth(1)
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_over_sharded_pubsub_on_a_cluster() {
    let cluster = tokio::task::spawn_blocking(start_cluster)
        .await
        .expect("cluster");
    let nodes: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let start = |name: String| {
        let nodes = nodes.clone();
        Live::start_with(move |c| {
            c.bus.kind = BusKind::Redis;
            c.redis.cluster = nodes;
            c.instance = name;
        })
    };
    let (a, b) = (start(unique("a")).await, start(unique("b")).await);
    for live in [&a, &b] {
        let mut ok = false;
        for _ in 0..300 {
            if live.ready().0 {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(ok, "the cluster bus becomes ready");
    }
    let driver = Driver::start().await;
    let room = unique("room");
    let (ua, ub) = (unique("ann"), unique("bob"));
    let mut ann = Client::connect(&a, &driver, "clerk", "websocket", &ua, Some(&[&room])).await;
    let mut bob = Client::connect(&b, &driver, "nexus", "websocket", &ub, Some(&[&room])).await;
    let channel = format!("switchboard:{{room:{room}}}");
    let ports = cluster.ports.clone();
    let mut subs = 0;
    for _ in 0..100 {
        subs = shard_subscribers(&ports, &channel);
        if subs == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        subs, 2,
        "both instances hold a shard subscription to the room"
    );
    // A message from ann on A reaches bob on B, and back.
    ann.send_message(&room, "over the cluster", false).await;
    let got = bob
        .canonical("message.created")
        .await
        .expect("bob receives it on B");
    assert_eq!(got.body["content"], "over the cluster");
    bob.send_message(&room, "and back", false).await;
    let got = ann
        .canonical_where("message.created", crate::live::WAIT, |e| {
            e.body["content"] == "and back"
        })
        .await;
    assert!(got.is_some(), "ann receives bob's message on A");
    // Leaving drops the shard subscription.
    bob.close().await;
    let mut subs = 2;
    for _ in 0..100 {
        subs = shard_subscribers(&ports, &channel);
        if subs == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(subs, 1, "B unsubscribes when its last member leaves");
}
