use std::net::IpAddr;

use actix_web::HttpRequest;

/// The client's IP: the peer address, or with `trust_proxy` the address the
/// reverse proxy reports (`Forwarded` / `X-Forwarded-For`).
pub fn client_ip(request: &HttpRequest, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let info = request.connection_info();
        let reported = info.realip_remote_addr()?;
        // The value may carry a port, or be a bracketed IPv6 address.
        return reported
            .parse::<IpAddr>()
            .ok()
            .or_else(|| reported.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()));
    }
    request.peer_addr().map(|addr| addr.ip())
}
