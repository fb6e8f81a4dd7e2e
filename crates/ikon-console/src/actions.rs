//! The owner's actions on an image's page: rename and describe, share and unshare by
//! account id (the limit shown), delete (with the reason when refused, e.g. still shared).
//! Each POST carries the session's CSRF token and calls the same service operation as the
//! API, so the rules and their messages are the API's.

use crate::html::{esc, q};
use crate::images::render_detail;
use crate::{csrf_refused, form_field, session, to_sign_in, Console};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use ikon_service::sessions::Session;
use ikon_service::{Caller, DeleteRequest, Image, ShareChange};
use serde::Deserialize;
use std::fmt::Write;

/// The forms an owner gets on a custom image's page.
pub(crate) async fn owner_forms(
    b: &mut String,
    c: &Console,
    caller: &Caller,
    s: &Session,
    region: &str,
    i: &Image,
) {
    let base = format!("/console/images/{}", q(&i.image_id));
    let r = q(region);
    let _ = write!(
        b,
        "<section><h2>Name and description</h2>\
         <form class=\"stack wide\" method=\"post\" action=\"{base}/attributes?region={r}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"a-name\">Name</label><input id=\"a-name\" name=\"name\" value=\"{name}\" required>\
         <label for=\"a-desc\">Description</label><input id=\"a-desc\" name=\"description\" value=\"{desc}\">\
         <button type=\"submit\">Save</button></form></section>",
        csrf = esc(&s.csrf),
        name = esc(&i.name),
        desc = esc(&i.description)
    );
    let limit = c.svc.config().limits.share_accounts_max;
    let shares = c
        .svc
        .images()
        .shares(caller, &i.image_id)
        .await
        .unwrap_or_default();
    let _ = write!(
        b,
        "<section><h2>Sharing</h2><p>Shared with {} of at most {limit} accounts.</p>",
        shares.len()
    );
    if !shares.is_empty() {
        b.push_str(
            "<table><caption>Accounts this image is shared with</caption><thead><tr>\
             <th scope=\"col\">Account</th><th scope=\"col\">Since</th><th scope=\"col\">Action</th></tr></thead><tbody>",
        );
        for sh in &shares {
            let _ = write!(
                b,
                "<tr><td>{acc}</td><td>{since}</td><td><form method=\"post\" action=\"{base}/shares?region={r}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"account\" value=\"{acc}\">\
                 <input type=\"hidden\" name=\"change\" value=\"unshare\">\
                 <button type=\"submit\" aria-label=\"Unshare from {acc}\">Unshare</button></form></td></tr>",
                acc = esc(&sh.account_id),
                since = esc(&ikon_service::ids::iso8601(sh.created_at)),
                csrf = esc(&s.csrf)
            );
        }
        b.push_str("</tbody></table>");
    }
    let _ = write!(
        b,
        "<form class=\"inline\" method=\"post\" action=\"{base}/shares?region={r}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"change\" value=\"share\">\
         <label for=\"s-account\">Account ID</label><input id=\"s-account\" name=\"account\" inputmode=\"numeric\" required>\
         <button type=\"submit\">Share</button></form></section>\
         <section><h2>Delete</h2><form method=\"post\" action=\"{base}/delete?region={r}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"danger\">Delete image</button></form></section>",
        csrf = esc(&s.csrf)
    );
}

#[derive(Deserialize, Default)]
pub(crate) struct RegionQuery {
    #[serde(default)]
    region: Option<String>,
}

/// The session and region of a state-changing request, or the answer refusing it.
async fn authorised(
    c: &Console,
    headers: &HeaderMap,
    body: &[u8],
    qy: &RegionQuery,
) -> Result<(Session, String), Response> {
    let Some(s) = session(c, headers).await else {
        return Err(to_sign_in());
    };
    let csrf = form_field(body, "csrf").unwrap_or_default();
    if !c.svc.accounts().csrf_ok(&s, &csrf) {
        return Err(csrf_refused());
    }
    let (region, _) = crate::images::region(c, qy.region.as_deref());
    Ok((s, region))
}

fn back(id: &str, region: &str, done: &str) -> Response {
    Redirect::to(&format!(
        "/console/images/{}?region={}&done={done}",
        q(id),
        q(region)
    ))
    .into_response()
}

/// `POST /console/images/{id}/attributes`.
pub(crate) async fn attributes(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(qy): Query<RegionQuery>,
    body: axum::body::Bytes,
) -> Response {
    let (s, region) = match authorised(&c, &headers, &body, &qy).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let name = form_field(&body, "name").unwrap_or_default();
    let desc = form_field(&body, "description").unwrap_or_default();
    let r = c
        .svc
        .images()
        .modify_image(
            &s.caller(&region),
            &id,
            Some(name.trim()),
            Some(&desc),
            None,
            None,
        )
        .await;
    match r {
        Ok(()) => back(&id, &region, "renamed"),
        Err(e) => render_detail(&c, &s, Some(&region), &id, Some((false, e.message))).await,
    }
}

/// `POST /console/images/{id}/shares`.
pub(crate) async fn shares(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(qy): Query<RegionQuery>,
    body: axum::body::Bytes,
) -> Response {
    let (s, region) = match authorised(&c, &headers, &body, &qy).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let account = form_field(&body, "account").unwrap_or_default();
    let (change, done) = match form_field(&body, "change").as_deref() {
        Some("unshare") => (ShareChange::Cancel, "unshared"),
        _ => (ShareChange::Share, "shared"),
    };
    let r = c
        .svc
        .images()
        .change_shares(
            &s.caller(&region),
            &id,
            &[account.trim().to_string()],
            change,
        )
        .await;
    match r {
        Ok(()) => back(&id, &region, done),
        Err(e) => render_detail(&c, &s, Some(&region), &id, Some((false, e.message))).await,
    }
}

/// `POST /console/images/{id}/delete`.
pub(crate) async fn delete(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(qy): Query<RegionQuery>,
    body: axum::body::Bytes,
) -> Response {
    let (s, region) = match authorised(&c, &headers, &body, &qy).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let req = DeleteRequest {
        ids: vec![id.clone()],
        dry_run: false,
        delete_snapshots: false,
    };
    match c.svc.images().delete_images(&s.caller(&region), &req).await {
        Ok(()) => Redirect::to(&format!("/console/images?region={}", q(&region))).into_response(),
        Err(e) => render_detail(&c, &s, Some(&region), &id, Some((false, e.message))).await,
    }
}
