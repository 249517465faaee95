//! `/ui`: the inspector page. Its files are compiled into the binary, so the page works on a
//! machine with no internet and needs no Node at run time. It is served only when
//! `API_TOKEN` is set: the page is useless without the API it reads.

use std::sync::OnceLock;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState, ErrorBody};

/// Only the page's own files; no inline script or style, no other origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

struct Asset {
    /// Under `/ui/`.
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// Hashed on first use, not at every start: most runs never open the page.
    etag: OnceLock<HeaderValue>,
}

const fn asset(path: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        path,
        content_type,
        body,
        etag: OnceLock::new(),
    }
}

/// Served at `/ui` and `/ui/` only: `/ui/index.html` is not one of the page's files.
static PAGE: Asset = asset("", HTML, include_str!("../../ui/index.html"));

/// Everything the page loads; any other name under `/ui/` is a 404. One file a line.
#[rustfmt::skip]
static FILES: [Asset; 17] = [
    asset("app.js", JAVASCRIPT, include_str!("../../ui/app.js")),
    asset("app.css", CSS, include_str!("../../ui/app.css")),
    asset("js/api.js", JAVASCRIPT, include_str!("../../ui/js/api.js")),
    asset("js/dom.js", JAVASCRIPT, include_str!("../../ui/js/dom.js")),
    asset("js/format.js", JAVASCRIPT, include_str!("../../ui/js/format.js")),
    asset("js/replay.js", JAVASCRIPT, include_str!("../../ui/js/replay.js")),
    asset("js/router.js", JAVASCRIPT, include_str!("../../ui/js/router.js")),
    asset("js/stream.js", JAVASCRIPT, include_str!("../../ui/js/stream.js")),
    asset("js/theme.js", JAVASCRIPT, include_str!("../../ui/js/theme.js")),
    asset("js/views/actions.js", JAVASCRIPT, include_str!("../../ui/js/views/actions.js")),
    asset("js/views/aggregates.js", JAVASCRIPT, include_str!("../../ui/js/views/aggregates.js")),
    asset("js/views/feed.js", JAVASCRIPT, include_str!("../../ui/js/views/feed.js")),
    asset("js/views/login.js", JAVASCRIPT, include_str!("../../ui/js/views/login.js")),
    asset("js/views/lookup.js", JAVASCRIPT, include_str!("../../ui/js/views/lookup.js")),
    asset("js/views/message.js", JAVASCRIPT, include_str!("../../ui/js/views/message.js")),
    asset("js/views/rejected.js", JAVASCRIPT, include_str!("../../ui/js/views/rejected.js")),
    asset("js/views/timeline.js", JAVASCRIPT, include_str!("../../ui/js/views/timeline.js")),
];

impl Asset {
    fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.body.as_bytes());
            let tag = format!("\"{}\"", hex::encode(&digest[..12]));
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"ui\""))
        })
    }
}

/// The inspector page (also at `/ui/`).
///
/// Public: the page asks for the API token and sends it on its own calls to `/api`.
#[utoipa::path(
    get,
    path = "/ui",
    operation_id = "ui",
    tag = "inspector",
    params(("If-None-Match" = Option<String>, Header, description = "An `ETag` received before")),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String,
            headers(("ETag" = String), ("Cache-Control" = String, description = "`no-cache`"),
                ("Content-Security-Policy" = String, description = "Its own script and style only"))),
        (status = 304, description = "Not modified: the `ETag` matches"),
        (status = 404, description = "`api_disabled`: `API_TOKEN` is not set", body = ErrorBody),
    )
)]
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state, &headers, &PAGE)
}

/// One of the inspector page's files; any other name is a 404.
#[utoipa::path(
    get,
    path = "/ui/{file}",
    operation_id = "ui_file",
    tag = "inspector",
    params(
        ("file" = String, Path, example = "app.js", description = "A file of the page, which \
            may name a folder: `app.js`, `app.css`, `js/api.js`, `js/views/feed.js`, ..."),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` received before"),
    ),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"),
            (String = "text/css"),
        ), headers(("ETag" = String), ("Cache-Control" = String, description = "`no-cache`"))),
        (status = 304, description = "Not modified: the `ETag` matches"),
        (status = 404, description = "`not_found`: not a file of the page; `api_disabled`: \
            `API_TOKEN` is not set", body = ErrorBody),
    )
)]
pub async fn file(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    // A path that does not even decode names no file either: the same JSON 404 as any
    // unknown route, whether or not the API is on, not axum's plain-text rejection.
    let asset = path
        .ok()
        .and_then(|Path(path)| FILES.iter().find(|asset| asset.path == path));
    match asset {
        Some(asset) => serve(&state, &headers, asset),
        None => ApiError::NotFound.into_response(),
    }
}

fn serve(state: &AppState, request: &HeaderMap, asset: &Asset) -> Response {
    if state.api_token.is_none() {
        return ApiError::ApiDisabled.into_response();
    }
    let etag = asset.etag();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag == etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::ETAG, etag.clone());
    // Revalidate every time: a new binary must not run with an old script.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
