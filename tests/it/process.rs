//! `switchboard serve` as a process of its own, for the tests that kill it: started on
//! free ports with the shipped configuration (edited as a test needs), its log kept, and
//! killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `switchboard serve`.
pub struct Running {
    pub child: Child,
    log: Arc<Mutex<String>>,
    pub ports: [u16; 3],
}

impl Running {
    /// Starts the binary with `env` on the shipped configuration, each `(from, to)` of
    /// `edits` replaced in it, and waits until its three listeners listen.
    pub fn start(env: &[(&str, &str)], edits: &[(&str, &str)]) -> Running {
        Running::start_with(env, None, edits)
    }

    /// As [`Running::start`], with the mapping files of `mappings` (`--mappings DIR`).
    pub fn start_with(
        env: &[(&str, &str)],
        mappings: Option<&std::path::Path>,
        edits: &[(&str, &str)],
    ) -> Running {
        let ports = [
            crate::support::free_port(),
            crate::support::free_port(),
            crate::support::free_port(),
        ];
        let dir = std::env::temp_dir().join(format!("sb-process-{}", ports[0]));
        std::fs::create_dir_all(&dir).expect("tmp");
        let mut cfg = switchboard::config::DEFAULT_TOML
            .replace("port = 3002", &format!("port = {}", ports[2]));
        for (from, to) in edits {
            assert!(cfg.contains(from), "the configuration has `{from}`");
            cfg = cfg.replace(from, to);
        }
        let file = dir.join("switchboard.toml");
        std::fs::write(&file, cfg).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        if let Some(m) = mappings {
            cmd.arg("--mappings").arg(m);
        }
        cmd.arg("serve")
            .arg("--config")
            .arg(&file)
            .env_remove("AUTH_JWT_SECRET")
            .env_remove("JWT_SECRET")
            .env("SWITCHBOARD_BIND", "127.0.0.1")
            .env("PORT", ports[0].to_string())
            .env("WS_PORT", ports[1].to_string())
            .env("RUST_LOG", "info")
            .env("SWITCHBOARD_WEBHOOK_STORE", dir.join("webhooks"))
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("switchboard runs");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut g = l.lock().expect("log");
                g.push_str(&line);
                g.push('\n');
            }
        });
        let r = Running { child, log, ports };
        r.wait_log("listening", 3);
        r
    }

    /// Waits until `needle` appears `times` times in the log.
    pub fn wait_log(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log.lock().expect("log").matches(needle).count() >= times {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no `{needle}` in the log:\n{}",
            self.log.lock().expect("log")
        );
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Sends a signal (`-KILL`, `-TERM`, …).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// SIGKILL, and waits until it is gone.
    pub fn kill(&mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    /// Where each listener is, in configuration order.
    pub fn addrs(&self) -> Vec<std::net::SocketAddr> {
        self.ports
            .iter()
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
