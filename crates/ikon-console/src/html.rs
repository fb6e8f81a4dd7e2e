//! HTML for the console's pages: escaping (every value from the service or the request goes
//! through [`esc`]) and the page frame (header with the account, region selector and sign-out
//! form; one stylesheet and one script, both served from the binary).

use std::fmt::Write;

/// `s` escaped for HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `s` escaped for a URL query value.
pub fn q(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(char::from(b));
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// The main navigation: (key, label, path). More pages join as they are built.
const NAV: &[(&str, &str, &str)] = &[("images", "Images", "/console/images")];

/// Who is signed in, for the frame.
pub struct Frame<'a> {
    /// Account id.
    pub account: &'a str,
    /// Administrator.
    pub admin: bool,
    /// CSRF token for the sign-out form.
    pub csrf: &'a str,
    /// Region in view.
    pub region: &'a str,
    /// Every region.
    pub regions: &'a [(String, String)],
    /// Which navigation entry is current.
    pub current: &'a str,
}

impl<'a> Frame<'a> {
    /// The frame for `s` viewing `region` (of `regions`), with `current` highlighted.
    pub fn of(
        s: &'a ikon_service::sessions::Session,
        region: &'a str,
        regions: &'a [(String, String)],
        current: &'a str,
    ) -> Frame<'a> {
        Frame {
            account: &s.account_id,
            admin: s.is_admin,
            csrf: &s.csrf,
            region,
            regions,
            current,
        }
    }
}

/// A table of hygiene scan findings under `caption` (its last column is each finding's
/// sentence: what it means and what to do).
pub fn findings_table(caption: &str, findings: &[ikon_service::Finding]) -> String {
    let mut b = format!(
        "<table><caption>{}</caption><thead><tr><th scope=\"col\">Severity</th>\
         <th scope=\"col\">Finding</th><th scope=\"col\">Where</th><th scope=\"col\">Meaning</th></tr></thead><tbody>",
        esc(caption)
    );
    for f in findings {
        let _ = write!(
            b,
            "<tr><td><span class=\"badge sev-{0}\">{0}</span></td><td>{1}</td><td><code>{2}</code></td><td>{3}</td></tr>",
            f.severity.name(),
            esc(&f.id),
            esc(&f.path),
            esc(&f.message)
        );
    }
    b.push_str("</tbody></table>");
    b
}

/// A whole page: `title` and `body` inside the frame (None: the signed-out frame).
pub fn page(title: &str, frame: Option<&Frame<'_>>, body: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Ikon console</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/app.css\">\
         <script src=\"/console/assets/app.js\" defer></script></head><body>",
        esc(title)
    );
    h.push_str("<header class=\"top\"><a class=\"brand\" href=\"/console/\">Ikon</a>");
    if let Some(f) = frame {
        h.push_str("<nav aria-label=\"Main\">");
        let operator: &[(&str, &str, &str)] = if f.admin {
            &[("operator", "Marketplace review", "/console/operator/market")]
        } else {
            &[]
        };
        for (key, label, href) in NAV.iter().chain(operator) {
            let cur = if f.current == *key {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(
                h,
                "<a href=\"{href}?region={}\"{cur}>{label}</a>",
                q(f.region)
            );
        }
        h.push_str("</nav><form class=\"region\" method=\"get\" action=\"\">");
        h.push_str("<label for=\"region\">Region</label><select id=\"region\" name=\"region\" data-autosubmit>");
        for (name, display) in f.regions {
            let sel = if name == f.region { " selected" } else { "" };
            let _ = write!(
                h,
                "<option value=\"{}\"{sel}>{} ({})</option>",
                esc(name),
                esc(display),
                esc(name)
            );
        }
        h.push_str("</select><button type=\"submit\">Go</button></form>");
        let _ = write!(
            h,
            "<span class=\"who\">Account {}{}</span>\
             <form method=\"post\" action=\"/console/sign-out\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            esc(f.account),
            if f.admin { " (administrator)" } else { "" },
            esc(f.csrf)
        );
    }
    h.push_str("</header><main>");
    h.push_str(body);
    h.push_str("</main></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(q("a b/é"), "a%20b%2F%C3%A9");
    }
}
