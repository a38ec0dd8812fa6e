//! Channel targets, as grpc's `doc/naming.md` spells them, besides plain URIs:
//!
//! | target | addresses | `:authority` and TLS name | scheme |
//! |---|---|---|---|
//! | `http://host:port`, `https://host:port` | the resolver's answer for `host` | `host:port` | as written |
//! | `dns:///host:port`, `dns:host:port` (port 443 if absent) | the resolver's answer for `host` | `host:port` | `https` with TLS settings, else `http` (h2c) |
//! | `ipv4:a.b.c.d:port,…`, `ipv6:[addr]:port,…` (port 443 if absent) | exactly these | the first address | `https` with TLS settings, else `http` (h2c) |
//!
//! `dns://server/host:port` (naming a DNS server) and `unix:` are refused with a
//! clear error: the system resolver is the only DNS, and the client speaks TCP.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use http::uri::{Authority, Scheme};
use http::Uri;

use crate::channel::InvalidTarget;

/// grpc's default port for `dns:`, `ipv4:` and `ipv6:` targets.
const DEFAULT_PORT: u16 = 443;

/// A parsed target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// `None`: chosen when the channel is built (https with TLS settings, else http).
    pub(crate) scheme: Option<Scheme>,
    pub(crate) authority: Authority,
    /// A fixed list (`ipv4:`, `ipv6:`); `None`: resolve the authority's host.
    pub(crate) addrs: Option<Vec<SocketAddr>>,
}

pub(crate) fn parse(target: &str) -> Result<Target, InvalidTarget> {
    let bad = |why: String| InvalidTarget(format!("target {target:?}: {why}"));
    if target.starts_with("unix:") || target.starts_with("unix-abstract:") {
        return Err(bad(
            "Unix domain sockets are not supported: the channel connects over TCP".into(),
        ));
    }
    if let Some(rest) = target.strip_prefix("dns:") {
        let host_port = match rest.strip_prefix("//") {
            Some(rest) => {
                let (server, host_port) = rest.split_once('/').unwrap_or((rest, ""));
                if !server.is_empty() {
                    return Err(bad(format!(
                        "naming a DNS server ({server:?}) is not supported: the system \
                         resolver is used; write dns:///host:port"
                    )));
                }
                host_port
            }
            None => rest,
        };
        return Ok(Target {
            scheme: None,
            authority: authority_with_port(host_port).map_err(bad)?,
            addrs: None,
        });
    }
    for (prefix, v6) in [("ipv4:", false), ("ipv6:", true)] {
        let Some(list) = target.strip_prefix(prefix) else {
            continue;
        };
        let addrs = list
            .split(',')
            .map(|a| address(a.trim(), v6))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let authority = addrs[0]
            .to_string()
            .parse()
            .map_err(|e| bad(format!("{e}")))?;
        return Ok(Target {
            scheme: None,
            authority,
            addrs: Some(addrs),
        });
    }
    let uri: Uri = target
        .parse()
        .map_err(|e| InvalidTarget(format!("target {target:?} is not a URI: {e}")))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::HTTP,
        Some("https") => Scheme::HTTPS,
        _ => {
            return Err(bad(
                "the scheme must be http:// (h2c), https:// (TLS), dns:///host:port, \
                 ipv4:addr:port[,addr:port…] or ipv6:[addr]:port[,…]"
                    .into(),
            ))
        }
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| InvalidTarget(format!("target {target:?} names no host")))?;
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(InvalidTarget(format!(
            "target {target:?} has a path: gRPC targets are scheme://host:port"
        )));
    }
    Ok(Target {
        scheme: Some(scheme),
        authority,
        addrs: None,
    })
}

/// `host[:port]` as an authority, with grpc's default port when none is given.
fn authority_with_port(host_port: &str) -> Result<Authority, String> {
    if host_port.is_empty() {
        return Err("names no host".into());
    }
    let authority: Authority = host_port
        .parse()
        .map_err(|e| format!("{host_port:?} is not host:port: {e}"))?;
    if authority.as_str().contains('@') {
        return Err("user information is not allowed".into());
    }
    if authority.port().is_some() {
        return Ok(authority);
    }
    format!("{host_port}:{DEFAULT_PORT}")
        .parse()
        .map_err(|e| format!("{host_port:?}: {e}"))
}

fn address(text: &str, v6: bool) -> Result<SocketAddr, String> {
    if text.is_empty() {
        return Err("an empty address in the list".into());
    }
    if v6 {
        if text.starts_with('[') {
            return text
                .parse::<SocketAddrV6>()
                .map(SocketAddr::V6)
                .map_err(|e| format!("{text:?} is not [IPv6]:port: {e}"));
        }
        return text
            .parse::<Ipv6Addr>()
            .map(|ip| SocketAddr::V6(SocketAddrV6::new(ip, DEFAULT_PORT, 0, 0)))
            .map_err(|e| format!("{text:?} is not an IPv6 address: {e}"));
    }
    if let Ok(addr) = text.parse::<SocketAddrV4>() {
        return Ok(SocketAddr::V4(addr));
    }
    text.parse::<std::net::Ipv4Addr>()
        .map(|ip| SocketAddr::V4(SocketAddrV4::new(ip, DEFAULT_PORT)))
        .map_err(|_| format!("{text:?} is not an IPv4 address[:port]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(target: &str) -> Target {
        parse(target).unwrap_or_else(|e| panic!("{target}: {e}"))
    }

    fn err(target: &str) -> String {
        parse(target).expect_err(target).to_string()
    }

    #[test]
    fn uris_keep_their_scheme() {
        let t = ok("https://greeter.example:8443");
        assert_eq!(t.scheme, Some(Scheme::HTTPS));
        assert_eq!(t.authority, "greeter.example:8443");
        assert_eq!(t.addrs, None);
        assert_eq!(ok("http://127.0.0.1:50051").scheme, Some(Scheme::HTTP));
        assert!(err("http://h:1/path").contains("has a path"));
        assert!(err("ftp://h:1").contains("dns:///host:port"));
        assert!(err("unix:///tmp/sock").contains("Unix domain sockets are not supported"));
    }

    #[test]
    fn dns_targets_resolve_their_host_and_default_to_port_443() {
        for target in [
            "dns:///greeter.internal:50051",
            "dns:greeter.internal:50051",
        ] {
            let t = ok(target);
            assert_eq!(t.scheme, None, "{target}");
            assert_eq!(t.authority, "greeter.internal:50051");
            assert_eq!(t.addrs, None);
        }
        assert_eq!(
            ok("dns:///greeter.internal").authority,
            "greeter.internal:443"
        );
        assert_eq!(ok("dns:///[::1]:50051").authority, "[::1]:50051");
        assert!(err("dns://8.8.8.8/greeter:50051").contains("naming a DNS server"));
        assert!(err("dns:///").contains("names no host"));
    }

    #[test]
    fn address_lists_are_taken_as_they_are() {
        let t = ok("ipv4:127.0.0.1:5001,127.0.0.2:5002, 10.0.0.1");
        assert_eq!(t.scheme, None);
        assert_eq!(t.authority, "127.0.0.1:5001");
        let addrs: Vec<String> = t.addrs.unwrap().iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:5001", "127.0.0.2:5002", "10.0.0.1:443"]);

        let t = ok("ipv6:[::1]:5001,[fe80::1]:5002,::2");
        assert_eq!(t.authority, "[::1]:5001");
        let addrs: Vec<String> = t.addrs.unwrap().iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["[::1]:5001", "[fe80::1]:5002", "[::2]:443"]);

        assert!(err("ipv4:127.0.0.1:5001,").contains("an empty address"));
        assert!(err("ipv4:localhost:5001").contains("not an IPv4 address"));
        assert!(err("ipv6:127.0.0.1:1").contains("not an IPv6 address"));
        assert!(err("ipv4:").contains("an empty address"));
    }
}
