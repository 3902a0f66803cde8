//! Where a webhook may go: targets that resolve to private, loopback, link-local,
//! unspecified or multicast addresses are refused unless allowed (`webhooks.allow`,
//! `SWITCHBOARD_WEBHOOK_ALLOW`). The check is the HTTP client's DNS resolver itself
//! (`GuardedResolver`), so the connection goes only to addresses that were checked: a
//! DNS answer that changes between a check and the connection (rebinding) does not help.
//! IP literals, which skip the resolver, are checked before the request.

use hyper_util::client::legacy::connect::dns::Name;
use ipnet::IpNet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The message of a refused target (the sender recognises it).
pub const REFUSED: &str = "private, loopback or link-local targets need webhooks.allow";

/// The allowlist.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<IpNet>,
}

impl Guard {
    /// From `webhooks.allow` entries (addresses or CIDR ranges; bad ones are skipped, the
    /// configuration check reports them).
    pub fn new(allow: &[String]) -> Guard {
        let allow = allow
            .iter()
            .filter_map(|a| {
                a.parse::<IpNet>()
                    .ok()
                    .or_else(|| a.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect();
        Guard { allow }
    }

    /// Whether `ip` is in a range webhooks may not reach by default.
    pub fn is_internal(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => {
                v4.is_private()
                    || v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_multicast()
                    || v4.is_broadcast()
                    || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10 (CGNAT)
            }
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return Guard::is_internal(IpAddr::V4(v4));
                }
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                    || (v6.segments()[0] & 0xffc0) == 0xfe80 // link-local
            }
        }
    }

    /// Whether a webhook may be sent to `addr`.
    pub fn permits(&self, addr: &SocketAddr) -> bool {
        !Guard::is_internal(addr.ip()) || self.allow.iter().any(|n| n.contains(&addr.ip()))
    }
}

/// A DNS resolver for the HTTP client that returns only the addresses the guard permits.
#[derive(Clone)]
pub struct GuardedResolver(pub Arc<Guard>);

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                all.iter().copied().filter(|a| guard.permits(a)).collect();
            if allowed.is_empty() {
                let ips: Vec<String> = all.iter().map(|a| a.ip().to_string()).collect();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves to {} only: {REFUSED}", ips.join(", ")),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_refused_unless_allowed() {
        let g = Guard::default();
        for a in [
            "127.0.0.1:80",
            "10.1.2.3:80",
            "192.168.0.1:80",
            "172.16.5.5:80",
            "169.254.169.254:80",
            "[::1]:80",
            "[fe80::1]:80",
            "[fd00::1]:80",
            "0.0.0.0:80",
            "[::ffff:127.0.0.1]:80",
            "100.64.0.1:80",
        ] {
            let addr: SocketAddr = a.parse().expect("addr");
            assert!(!g.permits(&addr), "{a} is refused");
        }
        assert!(g.permits(&"93.184.216.34:80".parse().expect("addr")));
        let g = Guard::new(&["10.0.0.0/8".into(), "127.0.0.1".into()]);
        assert!(g.permits(&"10.9.9.9:443".parse().expect("addr")));
        assert!(g.permits(&"127.0.0.1:8080".parse().expect("addr")));
        assert!(!g.permits(&"192.168.1.1:80".parse().expect("addr")));
    }
}
