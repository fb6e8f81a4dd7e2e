//! The web console of `ikon serve`, under `/console/` on the API listener: server-rendered
//! HTML over the service's operations (the console translates; the service decides every
//! rule and what each account may see), with a stylesheet and a small script embedded in the
//! binary. No JavaScript build step and no network fetch from the page.
//!
//! Security: sign-in exchanges a SecretId/SecretKey for a server-side session
//! ([`ikon_service::sessions`]); the browser holds an HttpOnly, SameSite=Strict cookie
//! (Secure when served over TLS); every POST carries the session's CSRF token; every answer
//! carries a Content-Security-Policy without inline script, `no-store` caching and framing
//! refused. No secret is ever put in a URL, a page or a log line.

mod actions;
mod html;
mod images;
mod operator;

use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use ikon_service::sessions::{Session, IDLE_SECS};
use ikon_service::Service;
use serde::Deserialize;

/// Name of the session cookie.
pub const COOKIE: &str = "ikon_session";

/// The console's state.
#[derive(Clone)]
pub struct Console {
    svc: Service,
    tls: bool,
}

/// The Content-Security-Policy of every console answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes (mount at the root: they all start with `/console`). `tls` says
/// whether the listener serves HTTPS (the cookie is then `Secure`).
pub fn router(svc: Service, tls: bool) -> Router {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/images", get(images::list))
        .route("/console/images/{id}", get(images::detail))
        .route("/console/images/{id}/attributes", post(actions::attributes))
        .route("/console/images/{id}/shares", post(actions::shares))
        .route("/console/images/{id}/delete", post(actions::delete))
        .route("/console/operator/market", get(operator::market))
        .route(
            "/console/operator/market/{id}/{verb}",
            post(operator::decide),
        )
        .route("/console/assets/app.css", get(css))
        .route("/console/assets/app.js", get(js))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(Console { svc, tls })
}

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// The session token the request's cookie carries.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The request's live session, if any.
pub(crate) async fn session(c: &Console, headers: &HeaderMap) -> Option<Session> {
    let token = cookie_token(headers)?;
    match c.svc.accounts().session(&token).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("console session lookup: {}", e.chain());
            None
        }
    }
}

pub(crate) fn to_sign_in() -> Response {
    Redirect::to("/console/sign-in").into_response()
}

/// An HTML answer.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn home(State(c): State<Console>, headers: HeaderMap) -> Response {
    match session(&c, &headers).await {
        Some(_) => Redirect::to("/console/images").into_response(),
        None => to_sign_in(),
    }
}

fn sign_in_form(error: Option<&str>) -> String {
    let mut b = String::from("<section class=\"card narrow\"><h1>Sign in</h1>");
    if let Some(e) = error {
        b.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            html::esc(e)
        ));
    }
    b.push_str(
        "<form method=\"post\" action=\"/console/sign-in\" class=\"stack\">\
         <label for=\"secret-id\">SecretId</label>\
         <input id=\"secret-id\" name=\"secret_id\" autocomplete=\"username\" required autofocus>\
         <label for=\"secret-key\">SecretKey</label>\
         <input id=\"secret-key\" name=\"secret_key\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"hint\">Use an API key pair of your account. The key is exchanged for a \
         session; it is not kept in the browser.</p></section>",
    );
    html::page("Sign in", None, &b)
}

async fn sign_in_page(State(c): State<Console>, headers: HeaderMap) -> Response {
    if session(&c, &headers).await.is_some() {
        return Redirect::to("/console/images").into_response();
    }
    html(StatusCode::OK, sign_in_form(None))
}

#[derive(Deserialize)]
struct SignIn {
    secret_id: String,
    secret_key: String,
}

async fn sign_in(State(c): State<Console>, Form(f): Form<SignIn>) -> Response {
    match c
        .svc
        .accounts()
        .sign_in(f.secret_id.trim(), f.secret_key.trim())
        .await
    {
        Ok(s) => {
            let cookie = format!(
                "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={IDLE_SECS}{}",
                s.token,
                if c.tls { "; Secure" } else { "" }
            );
            let mut r = Redirect::to("/console/images").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => html(
            StatusCode::UNAUTHORIZED,
            sign_in_form(Some(&format!("Not signed in: {}.", e.message))),
        ),
    }
}

/// The value of `name` in a form body (`application/x-www-form-urlencoded`), whatever
/// the request's declared type: a forged request is refused for its token, not its type.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The answer to a state-changing request without the session's CSRF token.
pub(crate) fn csrf_refused() -> Response {
    html(
        StatusCode::FORBIDDEN,
        html::page(
            "Refused",
            None,
            "<section class=\"card narrow\"><h1>Refused</h1><p class=\"error\" role=\"alert\">\
             The form was not sent from this console (its security token is missing or \
             stale). Reload the page and try again.</p></section>",
        ),
    )
}

async fn sign_out(
    State(c): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(s) = session(&c, &headers).await else {
        return to_sign_in();
    };
    let csrf = form_field(&body, "csrf").unwrap_or_default();
    if !c.svc.accounts().csrf_ok(&s, &csrf) {
        return csrf_refused();
    }
    if let Err(e) = c.svc.accounts().sign_out(&s.token).await {
        tracing::warn!("console sign-out: {}", e.chain());
    }
    let mut r = to_sign_in();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "ikon_session=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/app.css"))
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

fn asset(ct: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
