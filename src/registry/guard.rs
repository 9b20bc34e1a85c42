//! Where a request may go when an answer points elsewhere: redirects, token realms and upload
//! locations.
//!
//! A registry's answer is hostile input (docs/security.md). It may point airlock at:
//! - plain http while the registry itself was reached over https (a downgrade: credentials and
//!   content would cross the network in the clear). Refused unless `--insecure`, or
//!   `--insecure-registry` naming the host it leads to.
//! - a link-local address (169.254.0.0/16, fe80::/10) or a cloud metadata service
//!   (169.254.169.254, fd00:ec2::254, `metadata.google.internal`): a blind request forgery
//!   against the machine airlock runs on. Always refused, before any connection. A host name
//!   that *resolves* to such an address is refused by [`GuardedResolver`] unless the operator
//!   named that host (a registry, a mirror).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::transport::Endpoint;

/// Host names of cloud metadata services (Google; `metadata` is its short form).
const METADATA_NAMES: [&str; 3] = ["metadata.google.internal", "metadata", "instance-data"];

/// Why `ip` must never be contacted on an answer's say-so, if it must not.
pub(crate) fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            // AWS's IPv6 instance metadata endpoint.
            if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                return Some("a cloud metadata address");
            }
            if v6.segments()[0] & 0xffc0 == 0xfe80 {
                return Some("a link-local address");
            }
            None
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    // Alibaba Cloud's metadata service sits outside the link-local range.
    if v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200) {
        return Some("a cloud metadata address");
    }
    v4.is_link_local().then_some("a link-local address")
}

/// Why a host (name or literal address, IPv6 without brackets) is forbidden, if it is.
pub(crate) fn forbidden_host(hostname: &str) -> Option<&'static str> {
    if let Ok(ip) = hostname.parse::<IpAddr>() {
        return forbidden_ip(ip);
    }
    let name = hostname.trim_end_matches('.').to_ascii_lowercase();
    METADATA_NAMES
        .contains(&name.as_str())
        .then_some("a cloud metadata host")
}

/// What pointed airlock somewhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hop {
    Redirect,
    Realm,
    UploadLocation,
}

impl Hop {
    /// The words for [`super::RegistryError::Forbidden`].
    pub(crate) fn what(self) -> &'static str {
        match self {
            Hop::Redirect => "the redirect to",
            Hop::Realm => "the token realm",
            Hop::UploadLocation => "the upload location",
        }
    }
}

/// Checks that an answer from `from` may send airlock to `to` (both absolute URLs); the reason
/// in words when not.
pub(crate) fn check_hop(from: &str, to: &str, insecure: bool) -> Result<(), String> {
    let Some(target) = Endpoint::of_url(to) else {
        return Err("it is not an http(s) URL".into());
    };
    if let Some(why) = forbidden_host(target.hostname()) {
        return Err(format!(
            "{} is {why}; airlock never follows a registry there",
            target.hostname()
        ));
    }
    let from_https = from.starts_with("https://");
    if from_https && target.scheme == "http" && !insecure {
        return Err(
            format!("it downgrades https to plain http (give --insecure-registry {} or --insecure to allow plain http)", target.host),
        );
    }
    Ok(())
}

/// Resolves host names as ureq does, but refuses a name that resolves to a forbidden address
/// unless the operator named that host (a registry or mirror): a redirect to
/// `evil.example` that resolves to 169.254.169.254 is as dangerous as the literal address.
#[derive(Debug, Default)]
pub(crate) struct GuardedResolver {
    inner: DefaultResolver,
    trusted: Arc<RwLock<HashSet<String>>>,
}

impl GuardedResolver {
    /// A resolver and the handle to its set of trusted host names.
    pub(crate) fn new() -> (GuardedResolver, Arc<RwLock<HashSet<String>>>) {
        let r = GuardedResolver::default();
        let trusted = r.trusted.clone();
        (r, trusted)
    }
}

/// A name resolved to a forbidden address.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {ip}, {why}; airlock does not connect there on a registry's say-so")]
pub(crate) struct ForbiddenAddress {
    pub(crate) host: String,
    pub(crate) ip: IpAddr,
    pub(crate) why: &'static str,
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.inner.resolve(uri, config, timeout)?;
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        // Literal addresses were checked before the request (check_hop), and an operator's
        // own literal registry address is theirs to choose.
        if host.parse::<IpAddr>().is_ok() || self.trusted.read().unwrap().contains(&host) {
            return Ok(addrs);
        }
        check_resolved(&host, &addrs)?;
        Ok(addrs)
    }
}

fn check_resolved(host: &str, addrs: &[std::net::SocketAddr]) -> Result<(), ureq::Error> {
    for a in addrs {
        if let Some(why) = forbidden_ip(a.ip()) {
            return Err(ureq::Error::Other(Box::new(ForbiddenAddress {
                host: host.to_string(),
                ip: a.ip(),
                why,
            })));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_link_local_and_metadata_addresses() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "169.254.255.255",
            "100.100.100.200",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "metadata.google.internal",
            "METADATA.google.internal.",
            "metadata",
        ] {
            assert!(forbidden_host(bad).is_some(), "{bad}");
        }
        for ok in [
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "169.253.255.255",
            "169.255.0.0",
            "fec0::1",
            "fd00:ec2::253",
            "registry.k8s.io",
            "metadata.example.com",
        ] {
            assert!(forbidden_host(ok).is_none(), "{ok}");
        }
        assert_eq!(
            forbidden_host("169.254.169.254"),
            Some("a cloud metadata address")
        );
        assert_eq!(forbidden_host("169.254.1.1"), Some("a link-local address"));
    }

    #[test]
    fn hops_may_not_downgrade_or_reach_metadata() {
        let from = "https://reg:5000/v2/x/blobs/sha256:1";
        assert!(check_hop(from, "https://cdn/x?sig=1", false).is_ok());
        let e = check_hop(from, "http://cdn/x", false).unwrap_err();
        assert!(
            e.contains("downgrades https") && e.contains("--insecure"),
            "{e}"
        );
        assert!(check_hop(from, "http://cdn/x", true).is_ok());
        assert!(check_hop("http://reg/v2/", "http://cdn/x", false).is_ok());
        let e = check_hop(from, "http://169.254.169.254/latest/meta-data/", true).unwrap_err();
        assert!(
            e.contains("169.254.169.254 is a cloud metadata address"),
            "{e}"
        );
        for (to, why) in [
            (
                "http://[fe80::1]:80/x",
                "fe80::1 is a link-local address; airlock never follows a registry there",
            ),
            (
                "https://metadata.google.internal/x",
                "metadata.google.internal is a cloud metadata host",
            ),
            ("ftp://x/y", "it is not an http(s) URL"),
        ] {
            let e = check_hop(from, to, true).unwrap_err();
            assert!(e.contains(why), "{to}: {e}");
        }
    }

    /// The resolver itself, as the agent calls it: `2852039166` is no address literal to Rust
    /// (so check_hop lets it through), but the system resolver reads it as 169.254.169.254.
    /// Resolving it sends nothing.
    #[test]
    fn the_resolver_refuses_a_name_that_resolves_to_metadata() {
        use ureq::unversioned::transport::time::Duration;
        let timeout = NextTimeout {
            after: Duration::Exact(std::time::Duration::from_secs(5)),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let (r, trusted) = GuardedResolver::new();
        let config = ureq::config::Config::default();
        let uri: ureq::http::Uri = "http://2852039166/latest/meta-data/".parse().unwrap();
        assert!(check_hop("http://reg/v2/", &uri.to_string(), false).is_ok());
        let e = r.resolve(&uri, &config, timeout).unwrap_err();
        assert!(
            e.to_string()
                .contains("2852039166 resolves to 169.254.169.254, a cloud metadata address"),
            "{e}"
        );
        // A host the operator named may resolve there.
        trusted.write().unwrap().insert("2852039166".into());
        assert!(r.resolve(&uri, &config, timeout).is_ok());
    }

    #[test]
    fn names_resolving_to_metadata_are_refused() {
        let meta: std::net::SocketAddr = "169.254.169.254:80".parse().unwrap();
        let fine: std::net::SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert!(check_resolved("cdn.example", &[fine]).is_ok());
        let e = check_resolved("evil.example", &[fine, meta]).unwrap_err();
        assert!(
            e.to_string()
                .contains("evil.example resolves to 169.254.169.254"),
            "{e}"
        );
    }
}
