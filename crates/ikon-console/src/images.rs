//! The image pages: the list (tabs for custom, public, shared and marketplace images,
//! filters by name, platform and state, paging) and an image's detail (every attribute, the
//! hygiene scan's findings for its owner, its tasks). What appears is what the service's
//! visibility rules give this account; the page only lays it out.

use crate::html::{self, esc, q, Frame};
use crate::{html as respond, session, to_sign_in, Console};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ikon_service::{ids, ListImages, Visibility};
use serde::Deserialize;
use std::fmt::Write;

/// Images per page.
const PAGE: u64 = 20;
/// The tabs: (query value, label, category).
const TABS: &[(&str, &str, Visibility)] = &[
    ("custom", "Custom images", Visibility::Private),
    ("public", "Public images", Visibility::Public),
    ("shared", "Shared images", Visibility::Shared),
    ("market", "Marketplace images", Visibility::Market),
];
/// The states a filter may ask for.
const STATES: &[&str] = &[
    "NORMAL",
    "CREATING",
    "IMPORTING",
    "SYNCING",
    "CREATEFAILED",
    "IMPORTFAILED",
];

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    tab: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    page: Option<u64>,
}

/// The region in view: the asked one when the service serves it, else the first.
pub(crate) fn region(c: &Console, asked: Option<&str>) -> (String, Vec<(String, String)>) {
    let regions: Vec<(String, String)> = c
        .svc
        .config()
        .regions
        .iter()
        .map(|r| (r.name.clone(), r.display_name.clone()))
        .collect();
    let pick = asked
        .filter(|a| regions.iter().any(|(n, _)| n == a))
        .map(str::to_string)
        .or_else(|| regions.first().map(|(n, _)| n.clone()))
        .unwrap_or_default();
    (pick, regions)
}

/// A size for people: whole GiB, else one decimal of GiB from 1 GiB up, else MiB.
fn gib(bytes: u64) -> String {
    let g = bytes >> 30;
    let mib = u32::try_from(bytes >> 20).unwrap_or(u32::MAX);
    if g << 30 == bytes && g > 0 {
        format!("{g} GiB")
    } else if g > 0 {
        format!("{:.1} GiB", f64::from(mib) / 1024.0)
    } else {
        format!("{mib} MiB")
    }
}

fn state_badge(state: &str, percent: Option<i64>) -> String {
    let class = match state {
        "NORMAL" => "ok",
        "IMPORTFAILED" | "CREATEFAILED" => "bad",
        _ => "busy",
    };
    match percent {
        Some(p) if state == "SYNCING" => format!(
            "<span class=\"badge {class}\" data-live>{} {p}%</span>",
            esc(state)
        ),
        _ => format!("<span class=\"badge {class}\">{}</span>", esc(state)),
    }
}

fn filters(tab: &str, region: &str, qy: &ListQuery) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<form class=\"filters\" method=\"get\" action=\"/console/images\">\
         <input type=\"hidden\" name=\"region\" value=\"{}\">\
         <input type=\"hidden\" name=\"tab\" value=\"{}\">\
         <label for=\"f-name\">Name</label><input id=\"f-name\" name=\"name\" value=\"{}\">\
         <label for=\"f-platform\">Platform</label><input id=\"f-platform\" name=\"platform\" value=\"{}\">\
         <label for=\"f-state\">State</label><select id=\"f-state\" name=\"state\"><option value=\"\">Any</option>",
        esc(region),
        esc(tab),
        esc(qy.name.as_deref().unwrap_or("")),
        esc(qy.platform.as_deref().unwrap_or(""))
    );
    for s in STATES {
        let sel = if qy.state.as_deref() == Some(*s) {
            " selected"
        } else {
            ""
        };
        let _ = write!(b, "<option{sel}>{s}</option>");
    }
    b.push_str("</select><button type=\"submit\">Filter</button></form>");
    b
}

/// `GET /console/images`.
pub(crate) async fn list(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(qy): Query<ListQuery>,
) -> Response {
    let Some(s) = session(&c, &headers).await else {
        return to_sign_in();
    };
    let (region, regions) = region(&c, qy.region.as_deref());
    let (tab, label, cat) = TABS
        .iter()
        .find(|(k, _, _)| Some(*k) == qy.tab.as_deref())
        .copied()
        .unwrap_or(TABS[0]);
    let page = qy.page.unwrap_or(1).max(1);
    let req = ListImages {
        categories: Some(vec![cat]),
        names: qy.name.iter().filter(|n| !n.is_empty()).cloned().collect(),
        platforms: qy
            .platform
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect(),
        states: qy
            .state
            .as_ref()
            .filter(|s| STATES.contains(&s.as_str()))
            .map(|s| vec![s.clone()]),
        offset: (page - 1) * PAGE,
        limit: PAGE,
        ..ListImages::default()
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Images</h1><nav class=\"tabs\" aria-label=\"Image types\">"
    );
    for (k, l, _) in TABS {
        let cur = if *k == tab {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            b,
            "<a href=\"/console/images?region={}&amp;tab={k}\"{cur}>{l}</a>",
            q(&region)
        );
    }
    b.push_str("</nav>");
    b.push_str(&filters(tab, &region, &qy));
    match c.svc.images().list_images(&s.caller(&region), &req).await {
        Ok(l) => {
            table(&mut b, &region, label, &l.images);
            let pages = l.total.div_ceil(PAGE).max(1);
            let link = |p: u64| {
                format!(
                    "/console/images?region={}&amp;tab={tab}&amp;name={}&amp;platform={}&amp;state={}&amp;page={p}",
                    q(&region),
                    q(qy.name.as_deref().unwrap_or("")),
                    q(qy.platform.as_deref().unwrap_or("")),
                    q(qy.state.as_deref().unwrap_or(""))
                )
            };
            let _ = write!(
                b,
                "<nav class=\"pager\" aria-label=\"Pages\"><span>{} image{} · page {page} of {pages}</span>",
                l.total,
                if l.total == 1 { "" } else { "s" }
            );
            if page > 1 {
                let _ = write!(
                    b,
                    "<a href=\"{}\" rel=\"prev\">Previous</a>",
                    link(page - 1)
                );
            }
            if page < pages {
                let _ = write!(b, "<a href=\"{}\" rel=\"next\">Next</a>", link(page + 1));
            }
            b.push_str("</nav>");
        }
        Err(e) => {
            let _ = write!(
                b,
                "<p class=\"error\" role=\"alert\">{}</p>",
                esc(&e.message)
            );
        }
    }
    let frame = Frame::of(&s, &region, &regions, "images");
    respond(StatusCode::OK, html::page("Images", Some(&frame), &b))
}

fn table(b: &mut String, region: &str, label: &str, images: &[ikon_service::ImageView]) {
    if images.is_empty() {
        let _ = write!(
            b,
            "<p class=\"empty\">No {} here.</p>",
            label.to_lowercase()
        );
        return;
    }
    let _ = write!(
        b,
        "<table><caption>{label}</caption><thead><tr><th scope=\"col\">Image</th>\
         <th scope=\"col\">OS</th><th scope=\"col\">Platform</th><th scope=\"col\">Architecture</th>\
         <th scope=\"col\">Size</th><th scope=\"col\">State</th><th scope=\"col\">Created</th></tr></thead><tbody>"
    );
    for v in images {
        let i = &v.image;
        let _ = write!(
            b,
            "<tr><td><a href=\"/console/images/{}?region={}\">{}</a><div class=\"id\">{}</div></td>\
             <td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            q(&i.image_id),
            q(region),
            esc(&i.name),
            esc(&i.image_id),
            esc(&i.os_name),
            esc(&i.platform),
            esc(&i.architecture),
            gib(i.size_bytes),
            state_badge(&i.state, i.sync_percent),
            esc(&ids::iso8601(i.created_at))
        );
    }
    b.push_str("</tbody></table>");
}

#[derive(Deserialize, Default)]
pub(crate) struct DetailQuery {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// `GET /console/images/{id}`.
pub(crate) async fn detail(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(qy): Query<DetailQuery>,
) -> Response {
    let Some(s) = session(&c, &headers).await else {
        return to_sign_in();
    };
    render_detail(
        &c,
        &s,
        qy.region.as_deref(),
        &id,
        qy.done.as_deref().map(|d| (true, done_text(d))),
    )
    .await
}

/// What a finished action says on the page it returns to.
fn done_text(key: &str) -> String {
    match key {
        "renamed" => "Saved.",
        "shared" => "Shared.",
        "unshared" => "Share withdrawn.",
        _ => "Done.",
    }
    .to_string()
}

/// An image's page, with `notice` (success, text) above it.
pub(crate) async fn render_detail(
    c: &Console,
    s: &ikon_service::sessions::Session,
    asked_region: Option<&str>,
    id: &str,
    notice: Option<(bool, String)>,
) -> Response {
    let (region, regions) = region(c, asked_region);
    let caller = s.caller(&region);
    let frame = Frame::of(s, &region, &regions, "images");
    let v = match c.svc.images().visible_image(&caller, id).await {
        Ok(v) => v,
        Err(e) => {
            let b = format!(
                "<h1>Image {}</h1><p class=\"error\" role=\"alert\">{}</p>",
                esc(id),
                esc(&e.message)
            );
            return respond(StatusCode::NOT_FOUND, html::page("Image", Some(&frame), &b));
        }
    };
    let i = &v.image;
    let mut b = format!(
        "<h1>{}</h1><p class=\"id\">{}</p>",
        esc(&i.name),
        esc(&i.image_id)
    );
    if let Some((ok, text)) = &notice {
        let _ = write!(
            b,
            "<p class=\"{}\" role=\"{}\">{}</p>",
            if *ok { "notice" } else { "error" },
            if *ok { "status" } else { "alert" },
            esc(text)
        );
    }
    b.push_str("<dl class=\"facts\">");
    for (k, val) in [
        ("State", state_badge(&i.state, i.sync_percent)),
        ("Reason", esc(&i.state_reason)),
        ("Description", esc(&i.description)),
        ("OS", esc(&i.os_name)),
        ("Platform", esc(&i.platform)),
        ("Architecture", esc(&i.architecture)),
        ("Size", gib(i.size_bytes)),
        ("Licence", esc(&i.license_type)),
        ("Family", esc(&i.family)),
        ("Owner", esc(&i.owner)),
        ("Created", esc(&ids::iso8601(i.created_at))),
    ] {
        if !val.is_empty() {
            let _ = write!(b, "<dt>{k}</dt><dd>{val}</dd>");
        }
    }
    b.push_str("</dl>");
    if v.visibility == Visibility::Private {
        crate::actions::owner_forms(&mut b, c, &caller, s, &region, i).await;
    }
    if let Ok(scan) = c.svc.images().image_scan(&caller, id).await {
        let _ = write!(
            b,
            "<section><h2>Hygiene scan</h2><p>Scan {}",
            esc(&scan.state)
        );
        match scan.state.as_str() {
            "DONE" if scan.scanned.is_empty() => {
                b.push_str(": no operating system Ikon can read was found, so nothing was scanned.")
            }
            "DONE" if scan.findings.is_empty() => b.push_str(&format!(
                ": {} checked, nothing left behind was found.",
                esc(&scan.scanned.join(", "))
            )),
            "PENDING" | "NONE" => b.push_str(": the scan runs after the image is ready."),
            "FAILED" => b.push_str(&format!(": {}", esc(&scan.error))),
            _ => {}
        }
        b.push_str("</p>");
        if !scan.findings.is_empty() {
            b.push_str(&html::findings_table("Findings", &scan.findings));
        }
        b.push_str("</section>");
    }
    respond(StatusCode::OK, html::page(&i.name, Some(&frame), &b))
}
