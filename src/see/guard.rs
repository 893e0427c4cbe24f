//! Who may read the dashboard, and the headers every answer carries.
//!
//! - **Where it listens.** Loopback by default. Anywhere else only with a
//!   token ([`Access::check_listen`]), so a dashboard is never opened to a
//!   network by a typo.
//! - **`Host`** ([`Access::host_allowed`]): a browser tricked by DNS
//!   rebinding sends the attacker's name as `Host`; only `localhost`, IP
//!   literals (which no rebinding can produce) and names given with
//!   `--allow-host` pass.
//! - **Token**: when set, every request carries it as `Authorization:
//!   Bearer …` or the `call_monitor_token` cookie; `?token=…` on a page
//!   sets that cookie (HttpOnly, SameSite=Strict) and redirects to the URL
//!   without it, so it does not linger in the address bar or history.
//! - **Headers** ([`SECURITY_HEADERS`]): a strict Content-Security-Policy
//!   (own scripts and styles only, no inline code, no framing), no
//!   sniffing, no referrer. No CORS header is ever sent.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

/// The cookie holding the token.
pub const TOKEN_COOKIE: &str = "call_monitor_token";

/// Sent with every answer.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cache-control", "no-store"),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenError {
    #[error("--listen {0} is not a loopback address: anyone who can reach it could read your telemetry; pass --token SECRET (at least 16 characters) to require it, or listen on 127.0.0.1")]
    TokenRequired(SocketAddr),
    #[error("--token must be at least 16 characters (a guessable token protects nothing)")]
    WeakToken,
}

/// The access rules of one server.
#[derive(Debug, Clone)]
pub struct Access {
    token: Option<String>,
    allowed_hosts: Vec<String>,
}

/// What a request may do.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Allowed: the token came in the query string; set the cookie and
    /// send the browser to the same URL without it.
    SetCookie,
    /// The `Host` header is not one of ours.
    WrongHost,
    /// A token is required and was missing or wrong.
    Unauthorised,
}

impl Access {
    pub fn new(token: Option<String>, allowed_hosts: Vec<String>) -> Self {
        let allowed_hosts = allowed_hosts
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        Access {
            token,
            allowed_hosts,
        }
    }

    /// Refuses a non-loopback address without a token, and short tokens.
    pub fn check_listen(&self, listen: SocketAddr) -> Result<(), ListenError> {
        match &self.token {
            Some(token) if token.chars().count() < 16 => Err(ListenError::WeakToken),
            None if !listen.ip().is_loopback() => Err(ListenError::TokenRequired(listen)),
            _ => Ok(()),
        }
    }

    /// Judges one request from its headers and query string.
    pub fn verdict(&self, headers: &HeaderMap, query: Option<&str>) -> Verdict {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok());
        if !host.is_some_and(|h| self.host_allowed(h)) {
            return Verdict::WrongHost;
        }
        let Some(token) = &self.token else {
            return Verdict::Allow;
        };
        let presented = bearer(headers).or_else(|| cookie(headers, TOKEN_COOKIE));
        if presented.is_some_and(|p| same_secret(p, token)) {
            return Verdict::Allow;
        }
        let in_query = query.and_then(|q| {
            form_urlencoded::parse(q.as_bytes()).find_map(|(k, v)| (k == "token").then_some(v))
        });
        if in_query.is_some_and(|p| same_secret(&p, token)) {
            return Verdict::SetCookie;
        }
        Verdict::Unauthorised
    }

    /// `localhost`, an IP literal, or a name given with `--allow-host`,
    /// with or without a port.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let name = strip_port(&host);
        if name == "localhost" || self.allowed_hosts.iter().any(|h| h == name) {
            return true;
        }
        let literal = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        literal.parse::<IpAddr>().is_ok()
    }

    /// The cookie that carries the token, once accepted from the query.
    pub fn cookie_header(&self) -> Option<HeaderValue> {
        let token = self.token.as_ref()?;
        HeaderValue::from_str(&format!(
            "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
        ))
        .ok()
    }
}

/// `host:port`, `[v6]:port` or a bare name, without the port.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// Compares digests, so the time taken says nothing about how much of a
/// guess was right.
fn same_secret(presented: &str, token: &str) -> bool {
    let (a, b) = (Sha256::digest(presented), Sha256::digest(token));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn hosts_that_rebinding_could_forge_are_refused() {
        let access = Access::new(None, vec!["dash.example".into()]);
        for ok in [
            "localhost:7878",
            "127.0.0.1:7878",
            "[::1]:7878",
            "LOCALHOST",
            "dash.example:80",
            "10.0.0.5:7878",
        ] {
            assert!(access.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:7878",
            "localhost.evil.example",
            "127.0.0.1.nip.io:7878",
            "",
        ] {
            assert!(!access.host_allowed(bad), "{bad}");
        }
        assert_eq!(access.verdict(&headers(&[]), None), Verdict::WrongHost);
    }

    #[test]
    fn a_token_is_needed_off_loopback_and_checked_everywhere() {
        let loopback: SocketAddr = "127.0.0.1:7878".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:7878".parse().unwrap();
        assert_eq!(Access::new(None, vec![]).check_listen(loopback), Ok(()));
        assert_eq!(
            Access::new(None, vec![]).check_listen(public),
            Err(ListenError::TokenRequired(public))
        );
        assert_eq!(
            Access::new(Some("short".into()), vec![]).check_listen(public),
            Err(ListenError::WeakToken)
        );
        let token = "0123456789abcdef0123";
        let access = Access::new(Some(token.into()), vec![]);
        assert_eq!(access.check_listen(public), Ok(()));
        let host = ("host", "127.0.0.1:7878");
        assert_eq!(
            access.verdict(&headers(&[host]), None),
            Verdict::Unauthorised
        );
        let bearer = format!("Bearer {token}");
        assert_eq!(
            access.verdict(&headers(&[host, ("authorization", &bearer)]), None),
            Verdict::Allow
        );
        let cookie = format!("other=1; {TOKEN_COOKIE}={token}");
        assert_eq!(
            access.verdict(&headers(&[host, ("cookie", &cookie)]), None),
            Verdict::Allow
        );
        assert_eq!(
            access.verdict(&headers(&[host]), Some(&format!("a=1&token={token}"))),
            Verdict::SetCookie
        );
        assert_eq!(
            access.verdict(&headers(&[host, ("authorization", "Bearer wrong")]), None),
            Verdict::Unauthorised
        );
    }
}
