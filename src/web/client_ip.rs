//! The client's address, for the limits and the consent record.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName};

use crate::config::{ClientAddressSettings, ProxyHeader};

/// The address a request counts as coming from: the connection's peer, or,
/// when that peer is a trusted proxy, the address it reports.
///
/// Proxies append, so the header is read from the right: past the hops that
/// are trusted proxies themselves, to the first that is not. Everything left
/// of it was written by the client and is never used. A header that cannot be
/// read leaves the peer as the client, so a limit always applies.
pub fn client_ip(request: &HttpRequest, settings: &ClientAddressSettings) -> IpAddr {
    // Every listener is TCP, so only a request built in a unit test lacks a
    // peer; it counts as one unknown client rather than skipping a limit.
    let peer = request.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip().to_canonical());
    let Some(header) = settings.header else { return peer };
    if !settings.is_trusted(peer) {
        return peer;
    }
    let (name, hop_address): (HeaderName, fn(&str) -> Option<IpAddr>) = match header {
        ProxyHeader::XForwardedFor => (HeaderName::from_static("x-forwarded-for"), parse_address),
        ProxyHeader::Forwarded => (header::FORWARDED, forwarded_for),
    };
    let Ok(lines) = request.headers().get_all(name).map(|v| v.to_str()).collect::<Result<Vec<_>, _>>() else {
        return peer;
    };
    // A proxy may extend the client's line or add one of its own: one list either way.
    let nearest_first = lines.iter().flat_map(|line| line.split(',')).rev();
    let mut client = peer;
    for hop in nearest_first {
        let Some(address) = hop_address(hop) else { return peer };
        client = address;
        if !settings.is_trusted(address) {
            break;
        }
    }
    client
}

/// `for=` of one `Forwarded` element (RFC 7239): `for=192.0.2.60;proto=http`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then_some(value)
    })?;
    parse_address(value)
}

/// An address as proxies write it: `192.0.2.60`, `2001:db8::1`, with a port
/// (`192.0.2.60:4711`, `[2001:db8::1]:4711`), bracketed, or quoted.
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    let address = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| text.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_as_proxies_write_them() {
        for (text, expected) in [
            ("192.0.2.60", "192.0.2.60"),
            (" 192.0.2.60:4711", "192.0.2.60"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("\"[2001:db8::1]:4711\"", "2001:db8::1"),
            ("::ffff:192.0.2.60", "192.0.2.60"),
        ] {
            assert_eq!(parse_address(text), Some(expected.parse().unwrap()), "{text}");
        }
        for text in ["", "unknown", "_hidden", "192.0.2.300", "fe80::1%eth0"] {
            assert_eq!(parse_address(text), None, "{text}");
        }
        assert_eq!(forwarded_for("proto=https;For=\"[2001:db8::7]:80\""), Some("2001:db8::7".parse().unwrap()));
        assert_eq!(forwarded_for("proto=https"), None);
    }
}
