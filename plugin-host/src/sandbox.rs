//! What a run may do: its limits and its grants.
//!
//! Everything here is plain data and pure decisions (does this grant allow that
//! URL, is that address internal), so the rules can be tested without running a
//! plugin. Enforcement lives where the plugin touches the outside: the HTTP hook
//! (`http.rs`), the host imports, the store limiter and the deadline
//! (`run.rs`), the log (`logs.rs`).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Per-run limits. Every field has a default a check may override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory the plugin may grow to; also the most data one call may
    /// copy to the host (overlapping strings could make it more).
    pub memory_bytes: usize,
    /// Wall-clock time for the whole call, HTTP included.
    pub deadline: Duration,
    /// Size of the returned report, counted as the bytes of its strings plus a
    /// fixed cost per record (see `report_size`).
    pub report_bytes: usize,
    /// Bytes of HTTP response bodies, summed over the run.
    pub http_response_bytes: u64,
    /// Outgoing HTTP requests per run.
    pub http_requests: u32,
    /// Bytes of HTTP request bodies the plugin sends, summed over the run.
    pub http_request_bytes: u64,
    /// Size of one set of HTTP headers (a `wasi:http` `fields`), as wasmtime
    /// counts it (names, values and their in-memory overhead).
    pub http_headers: usize,
    /// Outgoing HTTP connections open at once.
    pub http_connections: u32,
    /// Resource handles the plugin holds in the host at once (header sets,
    /// requests, bodies, streams, pollables, files...).
    pub handles: u32,
    /// Ids streamed through `emit-ids` per run.
    pub ids: u64,
    /// Host memory the streamed ids take, per run: each id costs its length
    /// plus [`ID_OVERHEAD`], each asset its name plus [`ID_ASSET_OVERHEAD`].
    pub id_bytes: u64,
    /// Longest id (and asset name) `emit-ids` takes.
    pub id_length: usize,
    /// Log lines (from `log`, stdout and stderr) per run; the rest are dropped
    /// with one warning so a chatty plugin cannot flood the daemon's log.
    pub log_lines: u32,
    /// Log bytes (messages and fields) per run, dropped like lines.
    pub log_bytes: u64,
}

/// What the host holds per id besides its text (the id set's entry).
pub const ID_OVERHEAD: u64 = 16;
/// What the host holds per asset that has ids (its set and partitions).
pub const ID_ASSET_OVERHEAD: u64 = 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(30),
            report_bytes: 8 << 20,
            http_response_bytes: 256 << 20,
            http_requests: 1_000,
            http_request_bytes: 64 << 20,
            http_headers: 32 << 10,
            http_connections: 16,
            handles: 256,
            ids: 50_000_000,
            id_bytes: 128 << 20,
            id_length: 4 << 10,
            log_lines: 1_000,
            log_bytes: 1 << 20,
        }
    }
}

/// What a check grants its plugin beyond the empty sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Hosts the plugin may send HTTP requests to.
    pub allowed_hosts: Vec<HostGrant>,
    /// A host directory the plugin may read, mounted read-only at `/data`.
    pub read_dir: Option<PathBuf>,
}

/// Where a granted directory appears inside the sandbox.
pub const GUEST_DATA_DIR: &str = "/data";

/// One entry of `allowed_hosts`: `scheme://host[:port]`, where host may start
/// with `*.` to allow any subdomain (not the bare domain itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    scheme: Scheme,
    host: HostPattern,
    /// `None` means the scheme's default port.
    port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// A literal IP address: the grant names the address itself, so it may be
    /// internal.
    Ip(IpAddr),
    /// An exact DNS name, lowercase.
    Name(String),
    /// `*.suffix`: any name ending in `.suffix`, lowercase.
    Wildcard(String),
}

/// Why a string is not a valid grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid allowed host {input:?}: {reason} (expected scheme://host[:port], e.g. https://*.example.com)"
)]
pub struct GrantParseError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for HostGrant {
    type Err = GrantParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| GrantParseError {
            input: input.to_owned(),
            reason,
        };
        let (scheme, rest) = input
            .split_once("://")
            .ok_or_else(|| err("missing scheme"))?;
        let scheme = Scheme::parse(scheme).ok_or_else(|| err("scheme must be http or https"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(err("a grant names a host, not a path, query or user"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| err("bad port"))?;
        if host.is_empty() {
            return Err(err("empty host"));
        }
        let host = if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            HostPattern::Ip(ip)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(err("a wildcard must be a leading `*.` before a domain"));
            }
            HostPattern::Wildcard(suffix.to_ascii_lowercase())
        } else if host.contains('*') {
            return Err(err("a wildcard must be a leading `*.` before a domain"));
        } else {
            HostPattern::Name(host.to_ascii_lowercase())
        };
        Ok(HostGrant { scheme, host, port })
    }
}

impl fmt::Display for HostGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        match &self.host {
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostPattern::Ip(ip) => write!(f, "{ip}")?,
            HostPattern::Name(name) => f.write_str(name)?,
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// Splits `host[:port]` (IPv6 in brackets); `None` when the port is not a number.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(end) = authority.find(']') {
        let (host, rest) = authority.split_at(end + 1);
        (host, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    match port {
        Some(port) => Some((host, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
}

/// The destination of one outgoing request, as the guest wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub scheme: Scheme,
    /// Lowercase host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl Destination {
    /// Reads the destination from a request URI; `None` when it has no host or an
    /// unsupported scheme.
    pub fn from_uri(uri: &http::Uri) -> Option<Self> {
        let scheme = Scheme::parse(uri.scheme_str()?)?;
        let host = uri.host()?.trim_matches(['[', ']']).to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        Some(Self { scheme, host, port })
    }

    /// The grant an operator would add to allow exactly this destination.
    pub fn as_grant(&self) -> String {
        let host = match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.host.clone(),
        };
        if self.port == self.scheme.default_port() {
            format!("{}://{host}", self.scheme)
        } else {
            format!("{}://{host}:{}", self.scheme, self.port)
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_grant())
    }
}

impl HostGrant {
    /// Whether this grant allows requests to `dest`.
    pub fn allows(&self, dest: &Destination) -> bool {
        if self.scheme != dest.scheme
            || self.port.unwrap_or(self.scheme.default_port()) != dest.port
        {
            return false;
        }
        match &self.host {
            HostPattern::Ip(ip) => dest.ip() == Some(*ip),
            HostPattern::Name(name) => dest.ip().is_none() && dest.host == *name,
            HostPattern::Wildcard(suffix) => {
                dest.ip().is_none()
                    && dest
                        .host
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
            }
        }
    }

    /// Whether the grant spells out an IP address, which is the only way to allow
    /// requests to an internal address.
    pub fn names_address(&self) -> bool {
        matches!(self.host, HostPattern::Ip(_))
    }
}

impl Grants {
    /// The first grant that allows `dest`, if any.
    pub fn grant_for(&self, dest: &Destination) -> Option<&HostGrant> {
        self.allowed_hosts.iter().find(|g| g.allows(dest))
    }
}

/// What kind of internal address an IP is, if it is one.
pub fn internal_address_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || v4.is_broadcast() || a == 0 {
                Some("unspecified")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_address_kind(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(url: &str) -> Destination {
        Destination::from_uri(&url.parse().unwrap()).unwrap()
    }

    fn grant(s: &str) -> HostGrant {
        s.parse().unwrap()
    }

    #[test]
    fn exact_grant_matches_scheme_host_and_default_port() {
        let g = grant("https://api.example.com");
        assert!(g.allows(&dest("https://api.example.com/v1")));
        assert!(g.allows(&dest("https://API.example.com:443/")));
        assert!(!g.allows(&dest("http://api.example.com/")));
        assert!(!g.allows(&dest("https://api.example.com:8443/")));
        assert!(!g.allows(&dest("https://evil.api.example.com/")));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let g = grant("https://*.snowflakecomputing.com");
        assert!(g.allows(&dest("https://acme.snowflakecomputing.com/api")));
        assert!(g.allows(&dest("https://a.b.snowflakecomputing.com/")));
        assert!(!g.allows(&dest("https://snowflakecomputing.com/")));
        assert!(!g.allows(&dest("https://evilsnowflakecomputing.com/")));
    }

    #[test]
    fn ip_grants_match_only_that_address_and_port() {
        let g = grant("http://127.0.0.1:8080");
        assert!(g.names_address());
        assert!(g.allows(&dest("http://127.0.0.1:8080/x")));
        assert!(!g.allows(&dest("http://127.0.0.1:8081/x")));
        assert!(!g.allows(&dest("http://localhost:8080/x")));
        let v6 = grant("http://[::1]:9000");
        assert!(v6.allows(&dest("http://[::1]:9000/")));
        assert_eq!(v6.to_string(), "http://[::1]:9000");
    }

    #[test]
    fn bad_grants_say_why() {
        for (input, reason) in [
            ("example.com", "missing scheme"),
            ("ftp://example.com", "scheme must be http or https"),
            ("https://example.com/path", "a grant names a host"),
            ("https://exa*mple.com", "wildcard"),
            ("https://example.com:http", "bad port"),
        ] {
            let err = input.parse::<HostGrant>().unwrap_err();
            assert!(err.to_string().contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn destination_names_the_grant_to_add() {
        assert_eq!(
            dest("https://a.example.com/x").as_grant(),
            "https://a.example.com"
        );
        assert_eq!(
            dest("http://127.0.0.1:5000/x").as_grant(),
            "http://127.0.0.1:5000"
        );
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for (ip, kind) in [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("192.168.1.1", Some("private")),
            ("172.16.0.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("fd00::1", Some("private (unique local)")),
            ("fe80::1", Some("link-local")),
            ("::ffff:10.0.0.1", Some("private")),
            ("93.184.216.34", None),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(internal_address_kind(ip.parse().unwrap()), kind, "{ip}");
        }
    }
}
