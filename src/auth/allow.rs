//! Address allow lists: which client addresses a source accepts, and which peers are
//! proxies whose `X-Forwarded-For` says who the client is.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Rejection;

/// The networks a source accepts requests from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    /// Client networks allowed; empty means any address.
    pub allow: Vec<IpNet>,
    /// Peers whose `X-Forwarded-For` is believed. Anyone else's is ignored: a client can
    /// write any header it likes.
    pub trusted_proxies: Vec<IpNet>,
}

impl Allowlist {
    /// Checks the client of a request from `peer` carrying `forwarded_for` (the values of
    /// every `X-Forwarded-For` header, in order).
    pub fn check(&self, peer: IpAddr, forwarded_for: &[&str]) -> Result<IpAddr, Rejection> {
        let client = self.client(peer, forwarded_for)?;
        if self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&client)) {
            Ok(client)
        } else {
            Err(Rejection::AddressNotAllowed)
        }
    }

    /// The client's address: the peer, unless the peer is a trusted proxy; then the
    /// right-most `X-Forwarded-For` address that is not itself a trusted proxy (each proxy
    /// appends the address it saw, so anything left of that could be written by the client).
    fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> Result<IpAddr, Rejection> {
        let peer = canonical(peer);
        if !self.is_trusted(peer) || forwarded_for.is_empty() {
            return Ok(peer);
        }
        let hops = forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .rev()
            .map(|hop| {
                hop.trim()
                    .parse::<IpAddr>()
                    .map(canonical)
                    .map_err(|_| Rejection::MalformedForwardedFor)
            });
        let mut nearest = peer;
        for hop in hops {
            let hop = hop?;
            if !self.is_trusted(hop) {
                return Ok(hop);
            }
            nearest = hop;
        }
        // Every hop is a trusted proxy: the farthest one is the client.
        Ok(nearest)
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|net| net.contains(&address))
    }
}

/// An IPv4 peer on a dual-stack socket shows as `::ffff:a.b.c.d`: compare it as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    address.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(allow: &[&str], trusted: &[&str]) -> Allowlist {
        Allowlist {
            allow: allow.iter().map(|n| n.parse().unwrap()).collect(),
            trusted_proxies: trusted.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_direct_peer_is_checked_and_its_forwarded_for_ignored() {
        let list = list(&["203.0.113.0/24"], &[]);
        assert_eq!(list.check(ip("203.0.113.9"), &[]), Ok(ip("203.0.113.9")));
        assert_eq!(
            list.check(ip("198.51.100.1"), &["203.0.113.9"]),
            Err(Rejection::AddressNotAllowed),
            "an untrusted peer cannot claim an allowed address"
        );
        assert_eq!(
            list.check(ip("::ffff:203.0.113.9"), &[]),
            Ok(ip("203.0.113.9")),
            "IPv4 on a dual-stack socket"
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let list = list(&["203.0.113.0/24"], &["10.0.0.0/8"]);
        assert_eq!(
            list.check(ip("10.0.0.2"), &["198.51.100.7, 203.0.113.9, 10.0.0.5"]),
            Ok(ip("203.0.113.9")),
            "a spoofed left-most hop is not believed"
        );
        assert_eq!(
            list.check(ip("10.0.0.2"), &["203.0.113.9", "198.51.100.7"]),
            Err(Rejection::AddressNotAllowed),
            "headers are read in order, the last one nearest"
        );
        assert_eq!(
            list.check(ip("10.0.0.2"), &["not-an-address"]),
            Err(Rejection::MalformedForwardedFor)
        );
        assert_eq!(
            list.check(ip("10.0.0.2"), &[]),
            Err(Rejection::AddressNotAllowed),
            "a proxy that forwards nothing is the client itself"
        );
    }

    #[test]
    fn an_empty_allow_list_accepts_any_client() {
        let list = list(&[], &[]);
        assert!(list.check(ip("192.0.2.1"), &[]).is_ok());
    }
}
