//! The egress policy: which addresses a plugin may reach, checked on the addresses that are
//! actually dialled.
//!
//! The host resolves names itself, drops every address the policy refuses and connects only to
//! what is left, so a second DNS answer cannot slip past the check (DNS rebinding). HTTP goes
//! through one pooled client whose resolver is the policy; TCP from the `net` interface is dialled
//! here too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// Why the policy refused a name.
#[derive(Debug, thiserror::Error)]
#[error("egress policy refused {host}: every address it resolves to is in a refused range")]
pub struct Denied {
    pub host: String,
}

#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<IpNet>,
}

impl EgressPolicy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow.iter().any(|net| net.contains(&ip)) || is_global(ip)
    }

    /// Resolves `host` and keeps the permitted addresses, refusing when none is left.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let candidates: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| ResolveError::Unresolved(format!("{host}: {e}")))?
                .collect(),
        };
        if candidates.is_empty() {
            return Err(ResolveError::Unresolved(host.to_owned()));
        }
        let permitted: Vec<SocketAddr> = candidates
            .into_iter()
            .filter(|a| self.permits(a.ip()))
            .collect();
        if permitted.is_empty() {
            return Err(ResolveError::Denied(Denied {
                host: host.to_owned(),
            }));
        }
        Ok(permitted)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Denied(Denied),
    #[error("name did not resolve: {0}")]
    Unresolved(String),
}

/// IPv4-mapped and IPv4-compatible IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn is_global(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the cloud metadata address
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240) // reserved 240.0.0.0/4
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return false;
    }
    let first = segments[0];
    let refused = (first & 0xfe00) == 0xfc00 // unique local fc00::/7 (includes fd00:ec2::254 metadata)
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (first == 0x2001 && segments[1] == 0x0db8) // documentation
        || (first == 0x0100 && segments[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (segments[..6] == [0, 0, 0, 0, 0, 0]); // IPv4-compatible ::a.b.c.d
    if refused {
        return false;
    }
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // Translation prefixes reach the IPv4 address they embed: judge that address.
    // NAT64 64:ff9b::/96 and SIIT ::ffff:0:a.b.c.d carry it in the last 32 bits.
    if (first == 0x0064 && segments[1] == 0xff9b && segments[2..6] == [0, 0, 0, 0])
        || segments[..6] == [0, 0, 0, 0, 0xffff, 0]
    {
        return is_global_v4(embedded(segments[6], segments[7]));
    }
    // 6to4 2002::/16 carries it in bits 16..48.
    if first == 0x2002 {
        return is_global_v4(embedded(segments[1], segments[2]));
    }
    // Local-use NAT64 64:ff9b:1::/48 translates into networks of the operator's own.
    if first == 0x0064 && segments[1] == 0xff9b && segments[2] == 0x0001 {
        return false;
    }
    true
}

/// The resolver of the pooled HTTP client: the policy decides which addresses hyper may dial.
pub struct PolicyResolver {
    pub policy: Arc<EgressPolicy>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str(), 0)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Timeouts the host holds every connection to, whatever a plugin asks for.
#[derive(Debug, Clone, Copy)]
pub struct NetLimits {
    pub connect_timeout: Duration,
    pub max_request_timeout: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            max_request_timeout: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        !EgressPolicy::default().permits(text.parse().unwrap())
    }

    #[test]
    fn refuses_internal_ranges() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "64:ff9b:1::1",
            "::ffff:0:7f00:1",
            "::ffff:0:a9fe:a9fe",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn permits_public_addresses() {
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
            "64:ff9b::5db8:d822",
        ] {
            assert!(!refused(ip), "{ip} should be permitted");
        }
    }

    #[test]
    fn allowlist_opens_a_range() {
        let policy = EgressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(policy.permits("127.0.0.1".parse().unwrap()));
        assert!(policy.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!policy.permits("10.0.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn resolution_filters_names() {
        let policy = EgressPolicy::default();
        assert!(matches!(
            policy.resolve("localhost", 80).await,
            Err(ResolveError::Denied(_))
        ));
        let open = EgressPolicy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert!(!open.resolve("localhost", 80).await.unwrap().is_empty());
    }
}
