//! Which canonical events of a fronted connection go to the backend, which to the hub,
//! which to both; and which of the backend's facts reach the client (those the hub does
//! not own).

use crate::config::UpstreamConfig;

/// Where a client's intent goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// To the backend only.
    Upstream,
    /// To the hub only.
    Hub,
    /// To both; the client's ack comes from the backend.
    Both,
}

/// Canonical names, each exact or a family (`presence.*`).
#[derive(Debug, Clone, Default)]
pub struct Patterns(pub Vec<String>);

impl Patterns {
    /// Whether `name` is one of them (or of their families).
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        })
    }
}

/// The split of one upstream's events.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    hub: Patterns,
    shared: Patterns,
}

impl Routing {
    /// From the upstream's `hub` and `shared` lists.
    pub fn new(cfg: &UpstreamConfig) -> Routing {
        Routing {
            hub: Patterns(cfg.hub.clone()),
            shared: Patterns(cfg.shared.clone()),
        }
    }

    /// Where a client's intent goes.
    pub fn intent(&self, name: &str) -> Dest {
        if self.hub.matches(name) {
            Dest::Hub
        } else if self.shared.matches(name) {
            Dest::Both
        } else {
            Dest::Upstream
        }
    }

    /// Whether a fact the backend sent reaches the client: not when the hub owns it.
    pub fn from_backend(&self, name: &str) -> bool {
        !self.hub.matches(name)
    }

    /// Every pattern, for checking them against the vocabulary.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.hub.0.iter().chain(&self.shared.0).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_and_shared_patterns_split_the_events() {
        let r = Routing {
            hub: Patterns(vec!["presence.*".into(), "typing.start".into()]),
            shared: Patterns(vec!["room.join".into()]),
        };
        assert_eq!(r.intent("presence.heartbeat"), Dest::Hub);
        assert_eq!(r.intent("typing.start"), Dest::Hub);
        assert_eq!(r.intent("typing.stop"), Dest::Upstream);
        assert_eq!(r.intent("room.join"), Dest::Both);
        assert_eq!(r.intent("message.send"), Dest::Upstream);
        assert!(!r.from_backend("presence.changed"));
        assert!(r.from_backend("message.created"));
    }
}
