//! Who the client is behind reverse proxies. The `Forwarded` (RFC 7239) and `X-Forwarded-For` /
//! `X-Forwarded-Proto` headers are believed only when the connection comes from a configured
//! trusted proxy; the client is then the first hop, from the nearest one outwards, that is not
//! itself a trusted proxy. Anything else sent in those headers is only a claim, and is reported
//! as one (a spoof attempt), never used.

use ipnet::IpNet;
use std::net::IpAddr;

/// The forwarding headers of one request, as received (several fields of one name joined by
/// commas, as HTTP allows).
#[derive(Debug, Default, Clone, Copy)]
pub struct ForwardingHeaders<'a> {
    pub forwarded: Option<&'a str>,
    pub x_forwarded_for: Option<&'a str>,
    pub x_forwarded_proto: Option<&'a str>,
}

impl ForwardingHeaders<'_> {
    fn any(&self) -> bool {
        self.forwarded.is_some() || self.x_forwarded_for.is_some() || self.x_forwarded_proto.is_some()
    }
}

/// The client as the archive counts it: for limits, key allowlists and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// Whether the client reached the first trusted proxy over HTTPS (`None`: not said, or not
    /// believed).
    pub https: Option<bool>,
    /// The connection came from a trusted proxy.
    pub via_proxy: bool,
    /// Forwarding headers came from an address that is not a trusted proxy: ignored, and worth
    /// a security note.
    pub spoofed: bool,
}

/// The client of a request that arrived from `peer` with `headers`.
pub fn client(peer: IpAddr, trusted: &[IpNet], headers: ForwardingHeaders<'_>) -> Client {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return Client { ip: peer, https: None, via_proxy: false, spoofed: headers.any() };
    }
    // RFC 7239 takes precedence when both are sent: a proxy that writes it means it.
    let (hops, protos): (Vec<Option<IpAddr>>, Vec<String>) = match headers.forwarded {
        Some(value) => forwarded_elements(value),
        None => (
            headers
                .x_forwarded_for
                .map(|v| v.split(',').map(|hop| parse_node(hop.trim())).collect())
                .unwrap_or_default(),
            headers
                .x_forwarded_proto
                .map(|v| v.split(',').map(|p| p.trim().to_ascii_lowercase()).collect())
                .unwrap_or_default(),
        ),
    };
    // From the nearest hop outwards: every trusted proxy passes on what it was told; the first
    // address that is not one is the client. An entry that is not an address ("unknown", an
    // obfuscated name, garbage) ends the walk at the last proxy that could be trusted.
    let mut client = canonical(peer);
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = canonical(*ip);
                if !is_trusted(&client) {
                    break;
                }
            }
            None => break,
        }
    }
    let https = protos.last().and_then(|p| match p.as_str() {
        "https" => Some(true),
        "http" => Some(false),
        _ => None,
    });
    Client { ip: client, https, via_proxy: true, spoofed: false }
}

/// The `for` and `proto` parameters of each element of a `Forwarded` value, in order.
fn forwarded_elements(value: &str) -> (Vec<Option<IpAddr>>, Vec<String>) {
    let mut hops = Vec::new();
    let mut protos = Vec::new();
    for element in value.split(',') {
        for pair in element.split(';') {
            let Some((name, value)) = pair.split_once('=') else { continue };
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "for" => hops.push(parse_node(value)),
                "proto" => protos.push(value.to_ascii_lowercase()),
                _ => {}
            }
        }
    }
    (hops, protos)
}

/// A node as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711` or a bare IPv6 address; anything else is not an address.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return ip.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (ip, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4 addresses seen through an IPv6 socket (`::ffff:192.0.2.1`) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn xff(value: &str) -> ForwardingHeaders<'_> {
        ForwardingHeaders { x_forwarded_for: Some(value), ..Default::default() }
    }

    #[test]
    fn headers_from_an_untrusted_address_are_ignored_and_reported() {
        let c = client(ip("203.0.113.9"), &nets(&["10.0.0.0/8"]), xff("198.51.100.1"));
        assert_eq!(c, Client { ip: ip("203.0.113.9"), https: None, via_proxy: false, spoofed: true });
        let none = client(ip("203.0.113.9"), &nets(&["10.0.0.0/8"]), ForwardingHeaders::default());
        assert!(!none.spoofed);
        // No proxy configured: nothing is ever believed.
        let c = client(ip("127.0.0.1"), &[], ForwardingHeaders { x_forwarded_proto: Some("https"), ..xff("1.2.3.4") });
        assert_eq!(c, Client { ip: ip("127.0.0.1"), https: None, via_proxy: false, spoofed: true });
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_nearest_proxy() {
        let trusted = nets(&["10.0.0.0/8", "192.168.1.5/32"]);
        // The client put a fake address first; the proxies appended what they saw.
        let c = client(ip("10.0.0.2"), &trusted, xff("6.6.6.6, 198.51.100.7, 192.168.1.5"));
        assert_eq!(c.ip, ip("198.51.100.7"));
        assert!(c.via_proxy && !c.spoofed);
        // Only proxies in the chain: the farthest one is all that is known.
        assert_eq!(client(ip("10.0.0.2"), &trusted, xff("10.1.1.1")).ip, ip("10.1.1.1"));
        // A proxy that sends no header is its own client.
        assert_eq!(client(ip("10.0.0.2"), &trusted, ForwardingHeaders::default()).ip, ip("10.0.0.2"));
    }

    #[test]
    fn an_entry_that_is_not_an_address_stops_the_walk() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client(ip("10.0.0.2"), &trusted, xff("198.51.100.7, unknown")).ip, ip("10.0.0.2"));
        assert_eq!(client(ip("10.0.0.2"), &trusted, xff("198.51.100.7, 10.0.0.3, <script>")).ip, ip("10.0.0.2"));
        assert_eq!(client(ip("10.0.0.2"), &trusted, xff("")).ip, ip("10.0.0.2"));
    }

    #[test]
    fn rfc_7239_is_read_with_ports_quotes_and_ipv6() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let headers = ForwardingHeaders {
            forwarded: Some(r#"for="[2001:db8::17]:4711";proto=https, For=10.0.0.9:80;by=10.0.0.2"#),
            // Ignored when Forwarded is present.
            x_forwarded_for: Some("6.6.6.6"),
            x_forwarded_proto: Some("http"),
        };
        let c = client(ip("10.0.0.2"), &trusted, headers);
        assert_eq!(c.ip, ip("2001:db8::17"));
        assert_eq!(c.https, Some(true));
        let obfuscated = ForwardingHeaders { forwarded: Some("for=_hidden, for=198.51.100.2"), ..Default::default() };
        assert_eq!(client(ip("10.0.0.2"), &trusted, obfuscated).ip, ip("198.51.100.2"));
        let hidden_last = ForwardingHeaders { forwarded: Some("for=198.51.100.2, for=_hidden"), ..Default::default() };
        assert_eq!(client(ip("10.0.0.2"), &trusted, hidden_last).ip, ip("10.0.0.2"));
    }

    #[test]
    fn the_scheme_is_the_nearest_proxys_and_only_http_or_https() {
        let trusted = nets(&["127.0.0.0/8"]);
        let with = |proto| ForwardingHeaders { x_forwarded_proto: Some(proto), ..xff("198.51.100.7") };
        assert_eq!(client(ip("127.0.0.1"), &trusted, with("https")).https, Some(true));
        assert_eq!(client(ip("127.0.0.1"), &trusted, with("http, HTTPS")).https, Some(true));
        assert_eq!(client(ip("127.0.0.1"), &trusted, with("https, http")).https, Some(false));
        assert_eq!(client(ip("127.0.0.1"), &trusted, with("gopher")).https, None);
    }

    #[test]
    fn mapped_ipv4_addresses_match_ipv4_networks() {
        let trusted = nets(&["127.0.0.0/8"]);
        let c = client(ip("::ffff:127.0.0.1"), &trusted, xff("::ffff:198.51.100.7"));
        assert_eq!(c.ip, ip("198.51.100.7"));
    }

    #[test]
    fn node_forms() {
        assert_eq!(parse_node("192.0.2.1:4711"), Some(ip("192.0.2.1")));
        assert_eq!(parse_node("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node("example.org"), None);
        assert_eq!(parse_node("1.2.3.4:notaport"), None);
        assert_eq!(parse_node("[::1"), None);
    }
}
