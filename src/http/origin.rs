//! Refuses state-changing requests that a browser says come from another site.
//!
//! A web page on any site can make a visitor's browser send a `POST` to weft (a form, or a
//! `fetch` without CORS) with the credentials the browser holds for weft. Browsers mark such
//! requests: `Sec-Fetch-Site: cross-site`, and an `Origin` header naming the page's site. Those
//! are refused here, before authentication; clients that send neither header (the official
//! SDK, curl, scripts) are not affected, nor are `GET` and `HEAD`.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Whether `method` may change state (and so must not be sent from another site).
fn changes_state(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

/// Why a request that carries `headers` is refused as coming from another site, if it is.
/// `host` is the host (and port) the request was sent to.
fn cross_site(headers: &HeaderMap, host: Option<&str>) -> Option<&'static str> {
    for site in headers.get_all("sec-fetch-site") {
        if site.as_bytes().trim_ascii().eq_ignore_ascii_case(b"cross-site") {
            return Some("Cross-site requests are not accepted (Sec-Fetch-Site: cross-site)");
        }
    }
    for origin in headers.get_all(header::ORIGIN) {
        let same = origin.to_str().ok().zip(host).is_some_and(|(origin, host)| same_origin(origin, host));
        if !same {
            return Some("Cross-site requests are not accepted (Origin is not this server)");
        }
    }
    None
}

/// Whether the `Origin` value `origin` (`scheme://host[:port]`) names `host` (`host[:port]`,
/// as in the `Host` header), the default port of the scheme being the same as none. `null`
/// and anything that is not an http(s) origin never match.
fn same_origin(origin: &str, host: &str) -> bool {
    let origin = origin.trim().to_ascii_lowercase();
    let host = host.trim().to_ascii_lowercase();
    let (authority, default_port) = if let Some(rest) = origin.strip_prefix("http://") {
        (rest, ":80")
    } else if let Some(rest) = origin.strip_prefix("https://") {
        (rest, ":443")
    } else {
        return false;
    };
    if authority.is_empty() || host.is_empty() {
        return false;
    }
    let bare = |a: &str| a.strip_suffix(default_port).unwrap_or(a).to_string();
    bare(authority) == bare(&host)
}

/// The 403 for a state-changing request that a browser marks as sent from another site, if
/// `req` is one.
pub fn refuse_cross_site(req: &Request) -> Option<Response> {
    if changes_state(req.method()) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        if let Some(why) = cross_site(req.headers(), host) {
            return Some(ApiError::Forbidden(why.into()).into_response());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn origins_match_their_host_only() {
        assert!(same_origin("http://127.0.0.1:6345", "127.0.0.1:6345"));
        assert!(same_origin("HTTP://Weft.Example", "weft.example"));
        assert!(same_origin("https://weft.example", "weft.example:443"));
        assert!(same_origin("http://weft.example:80", "weft.example"));
        assert!(!same_origin("http://127.0.0.1:6346", "127.0.0.1:6345"));
        assert!(!same_origin("https://weft.example:80", "weft.example"));
        assert!(!same_origin("http://evil.example", "weft.example"));
        assert!(!same_origin("null", "weft.example"));
        assert!(!same_origin("http://weft.example.evil.example", "weft.example"));
        assert!(!same_origin("file://weft.example", "weft.example"));
        assert!(!same_origin("http://", ""));
    }
}
