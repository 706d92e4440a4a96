//! Signing in and out of the web UI. Signing in takes an API key (pasted into a form), opens a
//! server-side session and sets its token in an `HttpOnly; SameSite=Strict` cookie that
//! script can never read. The sign-in form is guarded by a double-submit token (a cookie of
//! its own, echoed in the form); every form of a session carries the session's CSRF token.

use axum::Form;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use subtle::ConstantTimeEq;

use super::layout::{self, Crumb};
use super::{SESSION_COOKIE, UiError, Viewer, blocking, cookie};
use crate::domain::error::Error;
use crate::domain::sessions::{self, SESSION_TTL};
use crate::http::AppState;
use crate::http::auth::client_address;

/// The sign-in form's double-submit cookie.
const SIGN_IN_COOKIE: &str = "weft_signin";

/// The sign-in page, returning to `next` once signed in; `problem` is shown above the form.
pub fn sign_in_page(next: &str, problem: Option<&str>) -> Response {
    let token = sessions::hash_token(&format!("{next}{}", crate::domain::call::new_id()));
    let status = if problem.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    let body = html! {
        section.signin {
            h1 { "Sign in" }
            p { "Paste a weft API key (" code { "weft keys create" } " prints one). The page keeps a session; the key itself is not stored in your browser." }
            @if let Some(p) = problem { p.problem role="alert" { (p) } }
            form method="post" action="/ui/sign-in" {
                input type="hidden" name="next" value=(next);
                input type="hidden" name="csrf" value=(token);
                label for="api_key" { "API key" }
                input #api_key type="password" name="api_key" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut r = layout::page(status, "Sign in", None, &[Crumb::here("Sign in")], body);
    let cookie =
        format!("{SIGN_IN_COOKIE}={token}; Path=/ui/sign-in; HttpOnly; SameSite=Strict; Max-Age=3600");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The sign-in form's fields.
#[derive(serde::Deserialize)]
pub struct SignInForm {
    api_key: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf: String,
}

fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// `POST /ui/sign-in`.
pub async fn sign_in(State(state): State<AppState>, req: Request) -> Result<Response, UiError> {
    let client = client_address(&req, &state.trusted_proxies);
    let expected = cookie(req.headers(), SIGN_IN_COOKIE).unwrap_or("").to_string();
    let Form(form) = Form::<SignInForm>::from_request(req, &state)
        .await
        .map_err(|e| Error::BadRequest(format!("Bad sign-in form: {e}")))?;
    let next = if crate::http::is_local_path(&form.next) { form.next.clone() } else { "/".to_string() };
    if !same(&form.csrf, &expected) {
        return Ok(sign_in_page(&next, Some("The form expired; please sign in again.")));
    }
    if form.api_key.len() > 1024 {
        return Ok(sign_in_page(&next, Some("That is not a weft API key.")));
    }
    let secret = form.api_key.clone();
    let Some((token, _)) = blocking(&state, move |s| sessions::sign_in(s, &secret)).await? else {
        if client.is_some_and(|ip| state.auth_failures.failed(ip)) {
            return Err(Error::TooMany("Too many failed sign-ins; retry later".into()).into());
        }
        return Ok(sign_in_page(&next, Some("No active key has that secret.")));
    };
    let mut r = super::see_other(&next);
    let h = r.headers_mut();
    let session = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL / 1_000_000
    );
    let clear = format!("{SIGN_IN_COOKIE}=; Path=/ui/sign-in; HttpOnly; SameSite=Strict; Max-Age=0");
    for c in [session, clear] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

/// The sign-out form's field.
#[derive(serde::Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/sign-out`: ends the session (its CSRF token required) and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: axum::http::HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Result<Response, UiError> {
    if !same(&form.csrf, viewer.csrf()) {
        return Err(Error::BadRequest("The form's CSRF token does not match this session".into()).into());
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE).map(String::from) {
        blocking(&state, move |s| sessions::sign_out(s, &token)).await?;
    }
    let mut r = super::see_other("/");
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r.into_response())
}
