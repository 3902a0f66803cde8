//! The console: an operator's web page at `/console` on the API port (`[console]`). A
//! login (the console password, else the internal API's secret) opens a session
//! (`session.rs`); the page's assets are embedded (`console/` of the repository: HTML,
//! JavaScript, CSS and the uPlot charting library, no CDN); its live views read one
//! server-sent event stream, one update a second (`sampler.rs` computes the overview once
//! for every console, the hub's tap samples the traffic); its actions (translate, replay
//! a dead letter, disconnect a user) are the operations the CLI and the server API do
//! (`views.rs`), each checked for the session and its CSRF token.

mod sampler;
mod session;
mod views;

use super::Context;
use super::respond::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use include_dir::{Dir, include_dir};
use serde_json::json;
use std::sync::Arc;

pub use sampler::Sampler;
use session::Sessions;

/// The page's files (the repository's `console/`).
static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/console");

/// The console's state, shared by every listener.
#[derive(Default)]
pub struct Console {
    sessions: Sessions,
    /// The overview and its series.
    pub sampler: Sampler,
}

/// The password that opens the console (empty: it is off).
fn password(cx: &Context) -> &str {
    if cx.cfg.console.password.is_empty() {
        &cx.cfg.internal_api.secret
    } else {
        &cx.cfg.console.password
    }
}

/// Starts the sampler, when the console is on.
pub(super) fn start(cx: &Arc<Context>) {
    if cx.cfg.console.enabled && cx.cfg.listeners.iter().any(|l| l.api) {
        cx.tasks.spawn(Sampler::run(cx.clone()));
    }
}

/// The answer to a `/console` request, or `None` for another path.
pub(super) async fn handle(
    req: Request<Incoming>,
    cx: &Arc<Context>,
    tls: bool,
) -> Option<Response<Body>> {
    let path = req.uri().path();
    if path != "/console" && !path.starts_with("/console/") {
        return None;
    }
    if !cx.cfg.console.enabled {
        return None;
    }
    if password(cx).is_empty() {
        return Some(text(
            StatusCode::NOT_FOUND,
            "the console needs a password: set console.password (SWITCHBOARD_CONSOLE_PASSWORD) or the internal API's secret",
        ));
    }
    let path = path.to_string();
    let method = req.method().clone();
    if let Some(name) = path.strip_prefix("/console/assets/") {
        return Some(asset(name));
    }
    match (method.clone(), path.as_str()) {
        (Method::GET, "/console/login") => return Some(html(StatusCode::OK, &login_page(None))),
        (Method::POST, "/console/login") => return Some(login(req, cx, tls).await),
        _ => {}
    }
    let Some((token, session)) = cx.console.sessions.of(req.headers()) else {
        return Some(if path.starts_with("/console/api/") {
            super::respond::json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "log in to the console first", "login": "/console/login"}),
            )
        } else {
            redirect("/console/login", None)
        });
    };
    if method == Method::POST {
        let given = req
            .headers()
            .get("x-console-csrf")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !Sessions::same_secret(&session.csrf, &String::from_utf8_lossy(given)) {
            return Some(super::respond::json_response(
                StatusCode::FORBIDDEN,
                &json!({"error": "missing or wrong X-Console-Csrf: reload the console"}),
            ));
        }
    }
    Some(match (method, path.as_str()) {
        (Method::GET, "/console" | "/console/") => {
            let page = asset_text("index.html").replace("{{csrf}}", &session.csrf);
            html(StatusCode::OK, &page)
        }
        (Method::POST, "/console/logout") => {
            cx.console.sessions.close(&token);
            let mut r = super::respond::json_response(StatusCode::OK, &json!({"loggedOut": true}));
            if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        (_, p) if p.starts_with("/console/api/") => views::api(req, cx).await,
        _ => text(StatusCode::NOT_FOUND, "no such console page"),
    })
}

async fn login(req: Request<Incoming>, cx: &Context, tls: bool) -> Response<Body> {
    let body = match super::respond::read_body(req.into_body(), 4096).await {
        Ok(b) => b,
        Err(too_large) => return too_large,
    };
    let given = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !Sessions::same_secret(password(cx), &given) {
        // A guess costs the guesser a moment, not the server.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        return html(
            StatusCode::UNAUTHORIZED,
            &login_page(Some("wrong password")),
        );
    }
    let (token, _) = cx.console.sessions.open();
    redirect("/console", Some(&session::set_cookie(&token, tls)))
}

fn login_page(error: Option<&str>) -> String {
    let e = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{e}</p>"))
        .unwrap_or_default();
    asset_text("login.html").replace("{{error}}", &e)
}

fn asset_text(name: &str) -> String {
    ASSETS
        .get_file(name)
        .and_then(|f| f.contents_utf8())
        .unwrap_or_default()
        .to_string()
}

fn asset(name: &str) -> Response<Body> {
    let Some(f) = ASSETS.get_file(name).filter(|_| !name.contains("..")) else {
        return text(StatusCode::NOT_FOUND, "no such asset");
    };
    let kind = match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    let mut r = Response::new(full(Bytes::from_static(f.contents())));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

fn html(status: StatusCode, page: &str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(page.to_string())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Only our own scripts, styles and the stream: no inline script, no framing.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(msg.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn redirect(to: &'static str, cookie: Option<&str>) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r
}
