//! Bounds on what one request, or one client, may take of the server: requests in progress
//! (in all and per client address) and the size of a request head.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{AppState, MAX_HEAD};
use crate::domain::error::Error;

/// The share of `--max-requests` one client address may have in progress by default: a
/// quarter, so that one client (or one misbehaving host) cannot take every slot.
pub fn per_address_default(max_requests: usize) -> usize {
    (max_requests / 4).max(1)
}

/// Client addresses remembered at most by [`AddressSlots`] (those with requests in progress
/// are never forgotten).
const MAX_ADDRESSES: usize = 10_000;

/// Requests in progress per client address.
pub struct AddressSlots {
    cap: usize,
    taken: Mutex<HashMap<IpAddr, usize>>,
}

/// One request's place among its address's, given back on drop.
pub struct AddressSlot {
    slots: Arc<AddressSlots>,
    ip: IpAddr,
}

impl AddressSlots {
    /// At most `cap` (at least 1) requests in progress per address.
    pub fn new(cap: usize) -> Self {
        AddressSlots { cap: cap.max(1), taken: Mutex::default() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<IpAddr, usize>) -> T) -> T {
        f(&mut self.taken.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A place for one more request from `ip`, or `None` if it has its cap in progress.
    /// Addresses with none in progress are kept (so that the next request of a client finds
    /// its entry) until the map holds [`MAX_ADDRESSES`], then forgotten.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        self.with(|m| {
            if m.len() >= MAX_ADDRESSES && !m.contains_key(&ip) {
                m.retain(|_, n| *n > 0);
            }
            let n = m.entry(ip).or_insert(0);
            if *n >= self.cap {
                return None;
            }
            *n += 1;
            Some(AddressSlot { slots: self.clone(), ip })
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.slots.with(|m| {
            if let Some(n) = m.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
            }
        });
    }
}

/// Middleware: every check a request meets before routing, in one layer (each layer costs its
/// own boxed future per request): the head bound (431), the request slots in all and per client
/// address (429), and refusing cross-site writes (403).
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // hyper's read buffer (of `MAX_HEAD` bytes, see [`super::serve`]) is only a looser outer
    // bound: a head is parsed whenever it is complete in the buffer, and one read may take it
    // past its size, so heads of up to about twice that reach here; much larger ones are
    // refused (431, or closed) before parsing.
    if head_size(&req) > MAX_HEAD {
        return ApiError::HeadTooLarge.into_response();
    }
    let client = super::auth::client_address(&req, &state.trusted_proxies);
    let _slot = match client.map(|ip| state.per_address.enter(ip)) {
        Some(None) => {
            return Error::TooMany("Too many requests in progress from this address; retry shortly".into())
                .into_response_api();
        }
        other => other.flatten(),
    };
    match state.permits.clone().try_acquire_owned() {
        Ok(_permit) => match super::origin::refuse_cross_site(&req) {
            Some(refused) => refused,
            None => next.run(req).await,
        },
        Err(_) => Error::TooMany("Too many requests in progress; retry shortly".into()).into_response_api(),
    }
}

/// The size of `req`'s head as sent over HTTP/1.1: the request line, then one `Name: value`
/// line per header, then the empty line.
fn head_size(req: &Request) -> usize {
    let uri = req.uri();
    let target = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => scheme.len() + 3 + authority.as_str().len(),
        _ => 0,
    } + uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    let line = req.method().as_str().len() + 1 + target + 1 + "HTTP/1.1".len() + 2;
    let headers: usize =
        req.headers().iter().map(|(name, value)| name.as_str().len() + 2 + value.len() + 2).sum();
    line + headers + 2
}
