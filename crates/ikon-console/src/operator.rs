//! Operator pages (the platform administrator only): the marketplace review queue — each
//! pending listing with its price and the hygiene scan's findings it was submitted with —
//! with approve and reject-with-reason, through the same service operations as `ikon admin
//! market`. A tenant is refused.

use crate::html::{self, esc, q, Frame};
use crate::{csrf_refused, form_field, html as respond, session, to_sign_in, Console};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use ikon_service::pricing::units;
use ikon_service::sessions::Session;
use ikon_service::Finding;
use serde::Deserialize;
use std::fmt::Write;

fn refused(c: &Console, s: &Session) -> Response {
    let (region, regions) = crate::images::region(c, None);
    let frame = Frame::of(s, &region, &regions, "");
    respond(
        StatusCode::FORBIDDEN,
        html::page(
            "Operators only",
            Some(&frame),
            "<h1>Operators only</h1><p class=\"error\" role=\"alert\">These pages are for the \
             platform administrator.</p>",
        ),
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct MarketQuery {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// `GET /console/operator/market`.
pub(crate) async fn market(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(qy): Query<MarketQuery>,
) -> Response {
    let Some(s) = session(&c, &headers).await else {
        return to_sign_in();
    };
    if !s.is_admin {
        return refused(&c, &s);
    }
    let (region, regions) = crate::images::region(&c, qy.region.as_deref());
    let mut b = String::from("<h1>Marketplace review</h1>");
    if let Some(d) = &qy.done {
        let _ = write!(
            b,
            "<p class=\"notice\" role=\"status\">Listing {}.</p>",
            esc(d)
        );
    }
    match c.svc.market().listings(None, Some("PENDING")).await {
        Ok(list) if list.is_empty() => {
            b.push_str("<p class=\"empty\">Nothing waits for review.</p>")
        }
        Ok(list) => {
            for l in &list {
                let findings: Vec<Finding> = serde_json::from_str(&l.findings).unwrap_or_default();
                let _ = write!(
                    b,
                    "<section class=\"card\"><h2>{id}</h2><dl class=\"facts\"><dt>Image</dt><dd>{img}</dd>\
                     <dt>Provider</dt><dd>{prov}</dd><dt>Region</dt><dd>{reg}</dd><dt>Price per hour</dt><dd>{price}</dd></dl>",
                    id = esc(&l.listing_id),
                    img = esc(&l.source_image_id),
                    prov = esc(&l.provider),
                    reg = esc(&l.region),
                    price = units(l.price_micros)
                );
                if findings.is_empty() {
                    b.push_str("<p>The hygiene scan found nothing.</p>");
                } else {
                    b.push_str(&html::findings_table("Hygiene scan findings", &findings));
                }
                let base = format!("/console/operator/market/{}", q(&l.listing_id));
                let _ = write!(
                    b,
                    "<div class=\"actions\"><form method=\"post\" action=\"{base}/approve\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <button type=\"submit\">Approve {id}</button></form>\
                     <form class=\"inline\" method=\"post\" action=\"{base}/reject\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <label for=\"r-{id}\">Reason</label><input id=\"r-{id}\" name=\"reason\" required>\
                     <button type=\"submit\" class=\"danger\">Reject {id}</button></form></div></section>",
                    csrf = esc(&s.csrf),
                    id = esc(&l.listing_id)
                );
            }
        }
        Err(e) => {
            let _ = write!(
                b,
                "<p class=\"error\" role=\"alert\">{}</p>",
                esc(&e.message)
            );
        }
    }
    let frame = Frame::of(&s, &region, &regions, "operator");
    respond(
        StatusCode::OK,
        html::page("Marketplace review", Some(&frame), &b),
    )
}

/// `POST /console/operator/market/{id}/{approve|reject}`.
pub(crate) async fn decide(
    State(c): State<Console>,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(s) = session(&c, &headers).await else {
        return to_sign_in();
    };
    if !c
        .svc
        .accounts()
        .csrf_ok(&s, &form_field(&body, "csrf").unwrap_or_default())
    {
        return csrf_refused();
    }
    if !s.is_admin {
        return refused(&c, &s);
    }
    let r = match verb.as_str() {
        "approve" => c
            .svc
            .market()
            .approve_listing(&id)
            .await
            .map(|_| "approved"),
        "reject" => {
            let reason = form_field(&body, "reason").unwrap_or_default();
            c.svc
                .market()
                .reject_listing(&id, reason.trim())
                .await
                .map(|()| "rejected")
        }
        _ => return (StatusCode::NOT_FOUND, "").into_response(),
    };
    match r {
        Ok(done) => Redirect::to(&format!("/console/operator/market?done={}", q(done))).into_response(),
        Err(e) => respond(
            StatusCode::BAD_REQUEST,
            html::page(
                "Marketplace review",
                None,
                &format!(
                    "<section class=\"card narrow\"><h1>Not done</h1><p class=\"error\" role=\"alert\">{}</p>\
                     <p><a href=\"/console/operator/market\">Back to the review queue</a></p></section>",
                    esc(&e.message)
                ),
            ),
        ),
    }
}
