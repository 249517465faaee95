//! `/ui`: the inspector page. Its three files are compiled into the binary, so the page
//! works on a machine with no internet and needs no Node at run time. It is served only
//! when `API_TOKEN` is set: the page is useless without the API it reads.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// Only the page's own files; no inline script or style, no other origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

struct Asset {
    content_type: &'static str,
    body: &'static str,
    etag: LazyLock<HeaderValue>,
}

macro_rules! asset {
    ($file:literal, $content_type:literal) => {
        Asset {
            content_type: $content_type,
            body: include_str!(concat!("../../ui/", $file)),
            etag: LazyLock::new(|| etag(include_str!(concat!("../../ui/", $file)))),
        }
    };
}

static INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");
static SCRIPT: Asset = asset!("app.js", "text/javascript; charset=utf-8");
static STYLE: Asset = asset!("app.css", "text/css; charset=utf-8");

fn etag(body: &str) -> HeaderValue {
    let digest = Sha256::digest(body.as_bytes());
    let tag = format!("\"{}\"", hex::encode(&digest[..12]));
    HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"ui\""))
}

pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state, &headers, &INDEX)
}

pub async fn script(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state, &headers, &SCRIPT)
}

pub async fn style(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state, &headers, &STYLE)
}

fn serve(state: &AppState, request: &HeaderMap, asset: &Asset) -> Response {
    if state.api_token.is_none() {
        return ApiError::ApiDisabled.into_response();
    }
    let etag = &*asset.etag;
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
