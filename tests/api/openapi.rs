//! The OpenAPI document: the committed copy is what the code generates, it is served without
//! a token, and it names every route the router serves, each of which answers on the live
//! app as documented (and nothing undocumented does).

use std::collections::BTreeSet;

use reqwest::{Method, Response};
use serde_json::Value;
use sinch_webhooks::http::openapi::{PATH, document_path, pretty_json};

use crate::helpers::*;

const API_TOKEN: &str = "openapi-test-token-0123456789";

/// Every kind of route: an OAuth2 source (so the token endpoint exists) and a second path.
const CONFIG: &str = r#"
[[source]]
name = "oauth"
path = "/api/sinch/oauth"
auth = "oauth2"
client_id = "sinch-conversation"
client_secret = "client-secret-value"

[[source]]
name = "sms"
path = "/sms-callbacks"
auth = "basic"
username = "sinch"
password = "sms-password-value"
"#;

const REGENERATE: &str = "run `cargo run -- openapi > docs/openapi.json` and commit it";

#[test]
fn the_committed_document_is_the_one_the_code_generates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let committed = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("docs/openapi.json: {error}; {REGENERATE}"));
    let generated = pretty_json().unwrap();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "its end".to_owned(), |n| format!("line {}", n + 1));
        panic!("docs/openapi.json differs from the code's document from {line}: {REGENERATE}");
    }
}

/// The app with every optional route on, the query API's token, and the document it serves
/// (fetched without the token).
async fn app_and_document() -> (TestApp, tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sources.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.display().to_string();
    let app = spawn_app_with(&[("CONFIG_FILE", &config), ("API_TOKEN", API_TOKEN)]).await;
    let response = app
        .client
        .get(format!("{}{PATH}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "served without a token");
    let document = json(response).await;
    (app, dir, document)
}

/// `(method, path, operation)` of every operation in the document.
fn operations(document: &Value) -> Vec<(Method, String, &Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            operations.push((method, path.clone(), operation));
        }
    }
    operations
}

/// The operation's path with each path parameter replaced by its example, or `1`.
fn concrete_path(path: &str, operation: &Value) -> String {
    let mut concrete = path.to_owned();
    let parameters = operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for parameter in parameters.iter().filter(|p| p["in"] == "path") {
        let name = parameter["name"].as_str().unwrap();
        let example = parameter["example"].as_str().unwrap_or("1");
        concrete = concrete.replace(&format!("{{{name}}}"), example);
    }
    concrete
}

/// Sends a request with an empty JSON object as body, with or without the API token.
async fn probe(app: &TestApp, method: Method, path: &str, token: bool) -> Response {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body("{}");
    if token {
        request = request.bearer_auth(API_TOKEN);
    }
    request.send().await.unwrap()
}

/// Status and body; a stream's body is not read (it does not end).
async fn answer(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let streaming = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        return (status, Value::Null);
    }
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_route_the_router_serves_is_documented_and_served_without_a_token() {
    let (_app, _dir, document) = app_and_document().await;
    assert_eq!(document["openapi"], "3.1.0");
    let documented: BTreeSet<(Method, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    for route in sinch_webhooks::http::routes() {
        let path = document_path(route.path);
        assert!(
            documented.contains(&(route.method.clone(), path.clone())),
            "{} {path} is served but not documented",
            route.method
        );
    }
    assert!(documented.contains(&(Method::POST, "/api/sinch/webhook".to_owned())));
    let generated = serde_json::to_value(sinch_webhooks::http::openapi::document()).unwrap();
    assert_eq!(
        document, generated,
        "the served document is the generated one"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_a_documented_status() {
    let (app, _dir, document) = app_and_document().await;
    // What a route that does not exist gets, to tell it apart from a route's own 404.
    let (_, fallback) = answer(probe(&app, Method::GET, "/no/such/route", false).await).await;
    for (method, path, operation) in operations(&document) {
        let concrete = concrete_path(&path, operation);
        for token in [false, true] {
            let (status, body) = answer(probe(&app, method.clone(), &concrete, token).await).await;
            let what = format!("{method} {concrete} (token: {token}) answered {status} {body}");
            assert!(body != fallback && status != 405, "{what}: not routed");
            assert!(
                operation["responses"].get(status.to_string()).is_some(),
                "{what}: a status the document does not list"
            );
        }
    }
}

#[tokio::test]
async fn paths_that_are_not_documented_are_not_found() {
    let (app, _dir, _) = app_and_document().await;
    let undocumented = [
        "/api/nope",
        "/api/messages/1/more",
        "/api/openapi.yaml",
        "/healthz/more",
        "/oauth2/authorize",
        "/api/sinch/nope",
        "/",
    ];
    for path in undocumented {
        for method in [Method::GET, Method::POST] {
            let (status, body) = answer(probe(&app, method.clone(), path, true).await).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (404, Some("not_found")),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn every_source_path_answers_as_the_documented_webhook() {
    let (app, _dir, document) = app_and_document().await;
    let webhook = &document["paths"]["/api/sinch/webhook"]["post"];
    let sources = app
        .client
        .get(format!("{}/api/sources", app.address))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    let sources = json(sources).await;
    let paths: Vec<&str> = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|source| source["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths.len(),
        3,
        "the environment's source and the file's two"
    );
    for path in paths {
        let (status, body) = answer(probe(&app, Method::POST, path, false).await).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(webhook["responses"].get("401").is_some());
    }
}

#[tokio::test]
async fn the_query_parameters_documented_are_the_ones_accepted() {
    let (app, _dir, document) = app_and_document().await;
    for (method, path, operation) in operations(&document) {
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let documented: BTreeSet<String> = parameters
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        if documented.is_empty() {
            continue;
        }
        let probe_path = format!("{}?not_a_parameter=1", concrete_path(&path, operation));
        let (status, body) = answer(probe(&app, method.clone(), &probe_path, true).await).await;
        assert_eq!(
            status, 400,
            "{method} {path}: an unknown parameter is refused"
        );
        let message = body["message"].as_str().unwrap();
        let accepted: BTreeSet<String> = message
            .split_once("expected one of: ")
            .map(|(_, names)| names.split(", ").map(str::to_owned).collect())
            .unwrap_or_default();
        assert_eq!(accepted, documented, "{method} {path}: {message}");
    }
}
