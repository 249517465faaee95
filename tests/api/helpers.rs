//! A real app on a real port with a real SQLite file, and a client that signs like Sinch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::Response;
use serde_json::Value;
use sinch_webhooks::config::Settings;
use sinch_webhooks::signature::sign;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test-secret-0123456789";
pub const PREVIOUS_SECRET: &str = "previous-secret-9876543210";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// A separate connection to the app's database file, for inspection and sabotage.
    pub db: SqlitePool,
    pub database_url: String,
    dir: Arc<TempDir>,
    extra_env: HashMap<String, String>,
    server: Server,
}

/// Spawns the app on `127.0.0.1:0` with a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Spawns the app with extra environment settings (e.g. `MAX_BODY_BYTES`).
pub async fn spawn_app_with(env: &[(&str, &str)]) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let extra = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    start(dir, extra).await
}

/// Starts an app on the database a stopped app left behind.
pub async fn restart_in(dir: Arc<TempDir>, extra_env: HashMap<String, String>) -> TestApp {
    start(dir, extra_env).await
}

async fn start(dir: Arc<TempDir>, extra_env: HashMap<String, String>) -> TestApp {
    let database_url = format!("sqlite://{}", dir.path().join("journal.db").display());
    let mut env = HashMap::from([("DATABASE_URL".to_owned(), database_url.clone())]);
    env.extend(extra_env.clone());
    let server = start_server(env).await;
    let app = TestApp {
        address: server.address.clone(),
        client: reqwest::Client::new(),
        db: inspection_pool(&database_url).await,
        database_url,
        dir,
        extra_env,
        server,
    };
    app.wait_until_ready().await;
    app
}

/// A running app, in this process, on `127.0.0.1:0`.
pub struct Server {
    pub address: String,
    shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Waits for the app to stop by itself, and returns why it did.
    pub async fn stopped_by_itself(self) -> String {
        let result = tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("the app stops by itself")
            .expect("server task");
        format!("{:#}", result.expect_err("stops with an error"))
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.handle
            .await
            .expect("server task")
            .expect("server result");
    }
}

/// Starts the app with the test secrets plus `env` (which must name `DATABASE_URL`).
pub async fn start_server(env: HashMap<String, String>) -> Server {
    maybe_init_logs();
    let mut all: HashMap<String, String> = HashMap::from([
        ("SINCH_WEBHOOK_SECRET".into(), SECRET.into()),
        (
            "SINCH_WEBHOOK_SECRET_PREVIOUS".into(),
            PREVIOUS_SECRET.into(),
        ),
    ]);
    all.extend(env);
    let settings = Settings::from_lookup(|name| all.get(name).cloned()).expect("test settings");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(sinch_webhooks::app::run(
        listener,
        settings,
        shutdown.clone(),
    ));
    Server {
        address,
        shutdown,
        handle,
    }
}

/// A pool on an app's SQLite database for inspection and sabotage. Its connections also see
/// the spool, and a `journal` view of every acknowledged callback: moved into `callbacks`
/// (processed, or waiting for a retry) or still spooled.
pub async fn inspection_pool(url: &str) -> SqlitePool {
    let options: SqliteConnectOptions = url
        .parse::<SqliteConnectOptions>()
        .expect("url")
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(10));
    let attach = sinch_webhooks::store::spool_attach_statement(options.get_filename());
    SqlitePoolOptions::new()
        .after_connect(move |conn, _| {
            let attach = attach.clone();
            Box::pin(async move {
                sqlx::query(&attach).execute(&mut *conn).await?;
                sqlx::query(JOURNAL_VIEW).execute(&mut *conn).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .expect("inspection pool")
}

const JOURNAL_VIEW: &str = "CREATE TEMP VIEW journal AS \
    SELECT id, received_at, api, trigger, dedupe_key, app_id, project_id, message_id, body, \
           nonce, signature_timestamp, processed_at, attempts, last_error FROM main.callbacks \
    UNION ALL \
    SELECT id, received_at, api, trigger, dedupe_key, app_id, project_id, message_id, body, \
           nonce, signature_timestamp, NULL, 0, NULL FROM spool.spool \
    WHERE id NOT IN (SELECT id FROM main.callbacks)";

fn maybe_init_logs() {
    // Once for the whole test binary; the guard lives as long as the process.
    static LOGS: std::sync::OnceLock<sinch_webhooks::telemetry::LogGuard> =
        std::sync::OnceLock::new();
    if std::env::var_os("TEST_LOG").is_some() {
        LOGS.get_or_init(|| {
            sinch_webhooks::telemetry::init(Some(sinch_webhooks::config::LogFormat::Pretty))
        });
    }
}

impl TestApp {
    pub fn webhook_url(&self) -> String {
        format!("{}/api/sinch/webhook", self.address)
    }

    /// The listener is bound before the app starts, so this first request simply waits in
    /// the accept queue until the store is open and the server runs: no sleeping.
    async fn wait_until_ready(&self) {
        let ready = self
            .client
            .get(format!("{}/readyz", self.address))
            .send()
            .await
            .expect("readyz");
        assert_eq!(ready.status(), 200, "app is not ready");
    }

    /// GETs a path and returns the status code.
    pub async fn get(&self, path: &str) -> u16 {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await;
        response.expect("GET failed").status().as_u16()
    }

    /// What `/metrics` shows. The recorder is the process's: under `cargo test` other tests
    /// count in it too, so compare values rather than expect exact ones.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(format!("{}/metrics", self.address)).send();
        response.await.unwrap().text().await.unwrap()
    }

    /// Posts `body` signed like Sinch with the current secret, a fresh nonce and now.
    pub async fn post_signed(&self, body: &str) -> Response {
        self.post_signed_as(
            body,
            SECRET,
            &ulid::Ulid::new().to_string(),
            Utc::now().timestamp(),
        )
        .await
    }

    pub async fn post_signed_as(&self, body: &str, secret: &str, nonce: &str, ts: i64) -> Response {
        let headers = signed_headers(body, secret, nonce, ts);
        self.post_with_headers(body.as_bytes().to_vec(), &headers)
            .await
    }

    pub async fn post_with_headers(&self, body: Vec<u8>, headers: &[(&str, String)]) -> Response {
        let mut request = self
            .client
            .post(self.webhook_url())
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("request failed")
    }

    /// Waits until the dispatcher has processed everything journaled.
    pub async fn drain(&self) {
        for _ in 0..400 {
            if self.unprocessed().await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("callbacks were not processed in time");
    }

    pub async fn unprocessed(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM journal WHERE processed_at IS NULL")
            .await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db)
            .await
            .expect(sql)
    }

    pub async fn message_status(&self, message_id: &str) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM messages WHERE message_id = ?")
            .bind(message_id)
            .fetch_one(&self.db)
            .await
            .expect("message row")
    }

    /// Stops the app gracefully and waits for it.
    pub async fn stop(self) -> (Arc<TempDir>, HashMap<String, String>) {
        self.server.stop().await;
        self.db.close().await;
        (self.dir, self.extra_env)
    }

    /// Waits for the app to stop by itself (after a latched failure); why it did, and
    /// what `restart_in` needs.
    pub async fn stopped_by_itself(self) -> (String, Arc<TempDir>, HashMap<String, String>) {
        let why = self.server.stopped_by_itself().await;
        self.db.close().await;
        (why, self.dir, self.extra_env)
    }

    /// Stops the app and starts a new one on the same database.
    pub async fn restart(self) -> TestApp {
        let (dir, env) = self.stop().await;
        start(dir, env).await
    }
}

/// The headers Sinch would send with `body`.
pub fn signed_headers(
    body: &str,
    secret: &str,
    nonce: &str,
    ts: i64,
) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    vec![
        (
            "x-sinch-webhook-signature",
            sign(secret, body.as_bytes(), nonce, &ts),
        ),
        ("x-sinch-webhook-signature-nonce", nonce.to_owned()),
        ("x-sinch-webhook-signature-timestamp", ts),
        (
            "x-sinch-webhook-signature-algorithm",
            "HmacSHA256".to_owned(),
        ),
    ]
}

/// POSTs `body` to `url` signed like Sinch, now, with a fresh nonce.
pub async fn post_signed_to(
    client: &reqwest::Client,
    url: &str,
    body: &str,
) -> reqwest::Result<Response> {
    let mut request = client.post(url).header("content-type", "application/json");
    for (name, value) in signed_headers(
        body,
        SECRET,
        &ulid::Ulid::new().to_string(),
        Utc::now().timestamp(),
    ) {
        request = request.header(name, value);
    }
    request.body(body.to_owned()).send().await
}

pub async fn json(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

/// A MESSAGE_DELIVERY report body.
pub fn delivery_report(message_id: &str, status: &str, event_time: &str) -> String {
    serde_json::json!({
        "app_id": "01HAPPAAAAAAAAAAAAAAAAAAA1",
        "accepted_time": event_time,
        "event_time": event_time,
        "project_id": "9d1f6a52-0000-4000-8000-00000000c0de",
        "message_delivery_report": {
            "message_id": message_id,
            "conversation_id": "",
            "status": status,
            "channel_identity": {"channel": "WHATSAPP", "identity": "46701234567", "app_id": ""},
            "contact_id": "",
            "processing_mode": "DISPATCH"
        }
    })
    .to_string()
}

pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/callbacks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs async clean-up from a `Drop`, which has no runtime to await in: on a helper thread
/// with a small runtime of its own, waiting for it to finish.
pub fn clean_up_on_a_thread<F>(clean_up: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            runtime.block_on(clean_up());
        }
    })
    .join();
}

/// Says loudly, straight to the process's stderr (past the harness's output capture), that
/// tests did not run: a skipped group must not look like a passing one.
pub fn say_skipped(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {message} ***\n");
}

/// One number read from an inspection pool.
pub async fn scalar(db: &SqlitePool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

/// Posts a signed DELIVERED/READ report for each of `message_ids` and expects each one
/// acknowledged.
pub async fn post_reports_accepted(
    client: &reqwest::Client,
    webhook: &str,
    message_ids: impl IntoIterator<Item = String>,
    status: &str,
) {
    for message_id in message_ids {
        let body = delivery_report(&message_id, status, "2025-03-04T12:00:00Z");
        let answer = post_signed_to(client, webhook, &body).await.unwrap();
        assert_eq!(answer.status(), 200, "{message_id}");
    }
}

/// Another writer on a SQLite file (`sqlite://...`), holding its write lock until it rolls
/// back or is dropped.
pub async fn hold_write_lock(sqlite_url: &str) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let mut holder = sqlx::SqliteConnection::connect(sqlite_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    holder
}
