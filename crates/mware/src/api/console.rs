//! The operator console: `GET /` serves one page (HTML, CSS and JavaScript embedded in
//! the binary: nothing is fetched from anywhere else, no build step), which reads the
//! API and follows `/api/v1/events` live. `GET /api/v1/console` tells the page each
//! service's panels (from the service itself), so a new service shows up without
//! editing the page.
//!
//! Security: a Content-Security-Policy with no inline script and connections only to
//! this site's instances; every value is rendered as text by the page. The page may
//! talk to another instance of the site when the one it came from is gone, so the API
//! answers CORS for the site's own instance origins (and only those): see [`cors`].

use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

const INDEX: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const APP_CSS: &str = include_str!("../../console/app.css");

/// The origins (`http://addr`) of every instance of the running site.
fn site_origins(st: &AppState) -> Vec<String> {
    st.0.site.borrow().instances().filter_map(|p| p.api_addr()).map(|a| format!("http://{a}")).collect()
}

/// The page's Content-Security-Policy: its own script and style only, connections to the
/// site's instances only, not framed.
fn csp(st: &AppState) -> String {
    let connect = site_origins(st).join(" ");
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' {connect}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

fn page(st: &AppState, body: &'static str, ctype: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, ctype), (header::CACHE_CONTROL, "no-cache")], body).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp(st)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// The console page.
#[utoipa::path(get, path = "/", responses((status = 200, description = "the operator console (HTML)")))]
pub async fn index(State(st): State<AppState>) -> Response {
    page(&st, INDEX, "text/html; charset=utf-8")
}

/// The console's script.
#[utoipa::path(get, path = "/console/app.js", responses((status = 200, description = "the console's script")))]
pub async fn app_js(State(st): State<AppState>) -> Response {
    page(&st, APP_JS, "text/javascript; charset=utf-8")
}

/// The console's style sheet.
#[utoipa::path(get, path = "/console/app.css", responses((status = 200, description = "the console's style sheet")))]
pub async fn app_css(State(st): State<AppState>) -> Response {
    page(&st, APP_CSS, "text/css; charset=utf-8")
}

/// What the console needs to draw the site: each service's panels. `service_panels`
/// maps a service to all its panels in order; `panels` keeps the first panel of each
/// service, as the document had it before a service could have several (a page of an
/// older version still draws it).
#[utoipa::path(get, path = "/api/v1/console", responses((status = 200, description = "site, this instance, and each service's panel descriptions")))]
pub async fn manifest(State(st): State<AppState>) -> Json<Value> {
    let mut first = serde_json::Map::new();
    let mut all = serde_json::Map::new();
    for s in st.0.host.services() {
        let panels = s.panels();
        let Some(p) = panels.first() else { continue };
        first.insert(s.name().to_string(), serde_json::to_value(p).unwrap_or(Value::Null));
        all.insert(s.name().to_string(), serde_json::to_value(&panels).unwrap_or(Value::Null));
    }
    let site = st.0.site.borrow().site.clone();
    Json(json!({"site": site, "instance": st.0.instance, "panels": first, "service_panels": all, "version": env!("CARGO_PKG_VERSION")}))
}

/// CORS for the site's own instances: a console loaded from one instance may read the
/// API of the others (each group's active instance answers its own services) and keep
/// working when its own instance is gone; a panel's action may be a DELETE (hanging up a
/// call). Any other origin gets no CORS header, so a browser keeps a foreign page from
/// reading or calling the API.
pub async fn cors(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_string);
    let allowed = origin.filter(|o| site_origins(&st).iter().any(|s| s == o));
    if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if let Some(o) = &allowed {
            allow(&mut r, o);
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, DELETE"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type, last-event-id"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        return r;
    }
    let mut r = next.run(req).await;
    if let Some(o) = &allowed {
        allow(&mut r, o);
    }
    r
}

fn allow(r: &mut Response, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_weighs_under_300_kb_and_has_no_inline_script() {
        let weight = super::INDEX.len() + super::APP_JS.len() + super::APP_CSS.len();
        assert!(weight < 300 * 1024, "{weight} bytes");
        // The CSP forbids inline script: the page must not need any.
        assert!(!super::INDEX.contains("<script>") && !super::INDEX.contains(" on"), "inline script or handler in index.html");
        assert!(!super::APP_JS.contains("innerHTML") && !super::APP_JS.contains("insertAdjacentHTML"), "values must be set as text");
    }
}
