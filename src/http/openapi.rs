//! The OpenAPI 3.1 document of every route, generated from the handlers' `#[utoipa::path]`
//! attributes and the types they return, so it cannot drift from the code. Served at
//! `GET /api/openapi.json`, printed by `sinch-webhooks openapi`, committed as
//! `docs/openapi.json`.
//!
//! To document a new route:
//! 1. put `#[utoipa::path(...)]` on its handler: the method, the path (as axum has it, with
//!    `{name}` segments), a `tag`, its parameters, and every status it can answer, each with
//!    its body type (`ErrorBody` for errors, naming the codes in the description). Return a
//!    `Json<T>` of a type that derives `ToSchema`, never a `json!` value, so the schema is
//!    the type;
//! 2. list the handler in `paths(...)` below;
//! 3. add its line to `routes()` in `http/mod.rs`, with `.token()` or `.action()` if it is
//!    behind `API_TOKEN`: the bearer requirement, the 401s, the `api_disabled` 404 and the
//!    `actions_disabled` 403 are added here from that line, not written on each handler;
//! 4. run `cargo run -- openapi > docs/openapi.json` and commit the result.
//!
//! The tests fail until `routes()` and the document agree (both ways) and the committed file
//! is what the code generates.

use std::sync::LazyLock;

use axum::Json;
use axum::http::Method;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes,
    SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use super::{Access, routes};
use crate::activity::ActivityItem;
use crate::store::EventEnvelope;

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

const DESCRIPTION: &str = "\
A durable, verified receiver for Sinch callbacks: the webhook Sinch posts to, the OAuth2 \
token endpoint it may fetch tokens from, the query API over what was received, the live \
stream of state changes, the forwarding outbox, and health and metrics.

Every error is JSON, `{\"error\": \"<code>\", \"message\": \"<what to do about it>\"}` \
(`ErrorBody`), except the token endpoint's, which follows RFC 6749. An unknown path answers \
404 `not_found` and a known path with another method 405 `method_not_allowed`. A request \
that takes longer than 30 s is answered 503 with an empty body.

The webhook's path is configuration: `/api/sinch/webhook` is the environment's source, and \
every source configured in `CONFIG_FILE` answers on its own path exactly as documented there. \
`/api/*` (except this document) needs `Authorization: Bearer <API_TOKEN>` and answers 404 \
`api_disabled` when `API_TOKEN` is not set.

Generated from the code: `sinch-webhooks openapi` prints it, `docs/openapi.json` is the \
committed copy.";

#[derive(OpenApi)]
#[openapi(
    info(title = "sinch-webhooks", description = DESCRIPTION),
    paths(
        super::webhook::receive,
        super::oauth2::token,
        super::health::live,
        super::health::ready,
        super::metrics::render,
        serve,
        super::ui::index,
        super::ui::file,
        super::api::messages,
        super::api::message,
        super::api::callbacks,
        super::api::callback,
        super::api::consent,
        super::api::contact,
        super::api::sms_batch,
        super::api::batch,
        super::aggregates::calls,
        super::aggregates::call,
        super::aggregates::verifications,
        super::aggregates::verification,
        super::aggregates::numbers,
        super::aggregates::number,
        super::api::channel,
        super::stream::events,
        super::inspector::activity,
        super::inspector::rejections,
        super::inspector::sources,
        super::send::samples,
        super::inspector::replay,
        super::send::send,
        super::outbox::list,
        super::outbox::retry,
    ),
    // What the streams carry: no response body names these, so they are listed here.
    components(schemas(EventEnvelope, ActivityItem)),
    modifiers(&SecuritySchemes, &FromTheRouteTable),
    tags(
        (name = "webhook", description = "Where Sinch posts callbacks, and its token endpoint"),
        (name = "query", description = "What the receiver stored (read-only)"),
        (name = "stream", description = "State changes as they are processed"),
        (name = "inspector", description = "The inspector page and what it needs beyond the query API"),
        (name = "forwarding", description = "The outbox of events forwarded to the application"),
        (name = "health", description = "Liveness and readiness"),
        (name = "operations", description = "Metrics and this document"),
    )
)]
struct Document;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    Document::openapi()
}

/// The document as `docs/openapi.json` holds it: pretty, keys in a stable order, a final
/// newline.
pub fn pretty_json() -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(&document())?;
    text.push('\n');
    Ok(text)
}

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(document);

/// This OpenAPI 3.1 document.
///
/// Public, like `/healthz`: it describes the service and holds no data.
#[utoipa::path(
    get,
    path = PATH,
    tag = "operations",
    operation_id = "openapi",
    responses((status = 200, description = "This OpenAPI 3.1 document",
        body = std::collections::HashMap<String, serde_json::Value>))
)]
pub async fn serve() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
}

/// How callers authenticate: the API's token, and each way a source can authenticate
/// Sinch's callbacks.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let http = |scheme, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(scheme)
                    .description(Some(description))
                    .build(),
            )
        };
        let header = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                name,
                description,
            )))
        };
        let schemes = [
            ("api_token", http(HttpAuthScheme::Bearer, API_TOKEN)),
            (
                "sinch_hmac",
                header(crate::signature::SIGNATURE_HEADER, HMAC),
            ),
            ("basic", http(HttpAuthScheme::Basic, BASIC)),
            ("custom_header", header("X-Callback-Token", CUSTOM_HEADER)),
            (
                "oauth2",
                SecurityScheme::OAuth2(OAuth2::with_description(
                    [Flow::ClientCredentials(ClientCredentials::new(
                        super::oauth2::TOKEN_PATH,
                        Scopes::new(),
                    ))],
                    OAUTH2,
                )),
            ),
            ("oauth2_client", http(HttpAuthScheme::Basic, OAUTH2_CLIENT)),
            (
                "sinch_numbers",
                header(crate::auth::numbers::SIGNATURE_HEADER, NUMBERS),
            ),
            ("sinch_application", header("Authorization", APPLICATION)),
        ];
        for (name, scheme) in schemes {
            components.add_security_scheme(name, scheme);
        }
    }
}

const API_TOKEN: &str = "`Authorization: Bearer <API_TOKEN>`, for `/api/*`.";
const HMAC: &str = "Sources with `auth = \"hmac\"` (and the environment's, \
    `SINCH_WEBHOOK_SECRET`): Sinch's signature. `x-sinch-webhook-signature` is the standard, \
    padded base64 of HMAC-SHA256 over `<body>.<nonce>.<timestamp>` under one of the source's \
    secrets, sent with `x-sinch-webhook-signature-nonce`, `-timestamp` (unix seconds, within \
    `SIGNATURE_TOLERANCE_SECS`) and optionally `-algorithm` (`HmacSHA256`).";
const BASIC: &str = "Sources with `auth = \"basic\"`: the source's user name and password.";
const CUSTOM_HEADER: &str = "Sources with `auth = \"header\"`: a header with exactly the \
    source's value. Its name is the source's `header` setting; `X-Callback-Token` is only an \
    example.";
const OAUTH2: &str = "Sources with `auth = \"oauth2\"`: `Authorization: Bearer <token>`, with a \
    token this receiver issued for the source's client at `POST /oauth2/token` (client \
    credentials; Sinch fetches and caches it).";
const OAUTH2_CLIENT: &str = "The token endpoint's client authentication: HTTP Basic with the \
    source's `client_id` and `client_secret` (Sinch's `token_request_type` BASIC), or, \
    without it, both as form fields (FORM).";

const NUMBERS: &str = "Sources with `auth = \"numbers\"` (and the environment's, \
    `SINCH_NUMBERS_SECRET` at `/api/sinch/numbers`): the lower-case hex HMAC-SHA1 of the body \
    under one of the source's secrets (the Numbers API's `hmacSecret`).";
const APPLICATION: &str = "Sources with `auth = \"application\"` (and the environment's, \
    `SINCH_APPLICATION_KEY` and `SINCH_APPLICATION_SECRET` at `/api/sinch/voice` and \
    `/api/sinch/verification`): `Authorization: Application <key>:<signature>`, the base64 \
    HMAC-SHA256 under the base64-decoded application secret of `POST`, the body's \
    Content-MD5, `Content-Type`, `x-timestamp:<value>` and the path Sinch called, one per \
    line; `x-timestamp` (ISO 8601) within `SIGNATURE_TOLERANCE_SECS`.";

/// What `routes()` says of each route: who may call it. The security requirement and the
/// answers that go with it come from here, so they are the router's, not a second copy.
struct FromTheRouteTable;

impl Modify for FromTheRouteTable {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // `/ui/` serves the page `/ui` does.
        if let Some(mut page) = openapi.paths.paths.get("/ui").cloned() {
            if let Some(operation) = page.get.as_mut() {
                operation.operation_id = Some("ui_slash".to_owned());
            }
            openapi.paths.paths.insert("/ui/".to_owned(), page);
        }
        for route in routes() {
            let path = document_path(route.path);
            let Some(item) = openapi.paths.paths.get_mut(&path) else {
                continue;
            };
            let Some(operation) = operation_mut(item, &route.method) else {
                continue;
            };
            if route.access != Access::Public {
                operation.security = Some(vec![SecurityRequirement::new(
                    "api_token",
                    Vec::<String>::new(),
                )]);
                add_answer(
                    operation,
                    401,
                    "`missing_token`, `bad_token`: send `Authorization: Bearer <API_TOKEN>`",
                );
                add_answer(operation, 404, "`api_disabled`: `API_TOKEN` is not set");
            }
            if route.access == Access::Action {
                add_answer(
                    operation,
                    403,
                    "`actions_disabled`: the API is read-only here (`API_ACTIONS=false`)",
                );
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                add_timeout(operation);
            }
        }
    }
}

/// A route's path as OpenAPI writes it: axum's `{*rest}` is `{rest}`.
pub fn document_path(route_path: &str) -> String {
    route_path.replace("{*", "{")
}

fn operation_mut<'a>(item: &'a mut PathItem, method: &Method) -> Option<&'a mut Operation> {
    match *method {
        Method::GET => item.get.as_mut(),
        Method::POST => item.post.as_mut(),
        Method::PUT => item.put.as_mut(),
        Method::DELETE => item.delete.as_mut(),
        Method::PATCH => item.patch.as_mut(),
        _ => None,
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Adds `description` to the operation's answer with this status, or adds the answer with an
/// `ErrorBody`.
fn add_answer(operation: &mut Operation, status: u16, description: &str) {
    let answers = &mut operation.responses.responses;
    match answers.get_mut(&status.to_string()) {
        Some(RefOr::T(answer)) => {
            answer.description = format!("{}; {description}", answer.description);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let mut answer = Response::new(description);
            let body = Content::new(Some(Ref::from_schema_name("ErrorBody")));
            answer.content.insert("application/json".to_owned(), body);
            answers.insert(status.to_string(), RefOr::T(answer));
        }
    }
}

/// Every route answers 503 with an empty body when the request takes longer than 30 s
/// (`REQUEST_TIMEOUT`).
fn add_timeout(operation: &mut Operation) {
    let answers = &mut operation.responses.responses;
    match answers.get_mut("503") {
        Some(RefOr::T(answer)) => {
            answer.description = format!(
                "{}; or, with an empty body, the request took longer than 30 s",
                answer.description
            );
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let answer = Response::new("The request took longer than 30 s (empty body)");
            answers.insert("503".to_owned(), RefOr::T(answer));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `(method, path)` of every operation in the document.
    fn documented() -> BTreeSet<(String, String)> {
        let document = document();
        let mut operations = BTreeSet::new();
        for (path, item) in &document.paths.paths {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PATCH", item.patch.is_some()),
            ];
            for (method, present) in methods {
                if present {
                    operations.insert((method.to_owned(), path.clone()));
                }
            }
        }
        operations
    }

    #[test]
    fn the_document_describes_exactly_the_routes_of_the_router() {
        let mut served: BTreeSet<(String, String)> = routes()
            .iter()
            .map(|route| (route.method.to_string(), document_path(route.path)))
            .collect();
        served.insert(("POST".to_owned(), super::super::WEBHOOK_PATH.to_owned()));
        assert_eq!(
            documented(),
            served,
            "routes() in http/mod.rs and the #[utoipa::path] handlers listed in openapi.rs \
             must name the same routes"
        );
    }

    #[test]
    fn every_operation_has_its_own_id_and_answers_503_on_timeout() {
        let document = document();
        let mut ids = BTreeSet::new();
        for item in document.paths.paths.values() {
            for operation in [&item.get, &item.post].into_iter().flatten() {
                let id = operation.operation_id.clone().unwrap_or_default();
                assert!(ids.insert(id.clone()), "operation id {id:?} is used twice");
                assert!(operation.responses.responses.contains_key("503"), "{id}");
            }
        }
    }

    #[test]
    fn the_api_routes_need_the_token_and_the_others_do_not() {
        let document = document();
        for route in routes() {
            let path = document_path(route.path);
            let item = &document.paths.paths[&path];
            let operation = if route.method == Method::GET {
                item.get.as_ref()
            } else {
                item.post.as_ref()
            };
            let security =
                serde_json::to_value(&operation.expect(&path).security).expect("serialises");
            let needs_token = security.to_string().contains("api_token");
            assert_eq!(needs_token, route.access != Access::Public, "{path}");
            assert_eq!(
                route.path.starts_with("/api/") && path != PATH,
                needs_token,
                "{path}"
            );
        }
    }
}
