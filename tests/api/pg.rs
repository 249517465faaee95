//! A private PostgreSQL schema per test, on the server `TEST_POSTGRES_URL` names.

use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

/// Schemas left behind by crashed runs are dropped once they are this old.
const STALE_AFTER_SECS: u64 = 3600;

pub struct Schema {
    base_url: String,
    name: String,
}

impl Schema {
    /// A new, empty schema; `None` (with a loud note) when no server is configured.
    pub async fn create() -> Option<Schema> {
        let Ok(base_url) = std::env::var("TEST_POSTGRES_URL") else {
            warn_skipped();
            return None;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let name = format!("t_{now}_{}", ulid::Ulid::new().to_string().to_lowercase());
        let mut conn = PgConnection::connect(&base_url)
            .await
            .expect("TEST_POSTGRES_URL is set but PostgreSQL is not reachable");
        drop_stale_schemas(&mut conn, now).await;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create schema");
        conn.close().await.ok();
        Some(Schema { base_url, name })
    }

    /// A URL whose connections use this schema.
    pub fn url(&self) -> String {
        self.url_via(&self.base_url)
    }

    /// The same, through another host:port (a proxy in front of the server).
    pub fn url_via(&self, base_url: &str) -> String {
        let separator = if base_url.contains('?') { '&' } else { '?' };
        format!(
            "{base_url}{separator}options=-c%20search_path%3D{}",
            self.name
        )
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.base_url.clone(), self.name.clone());
        crate::helpers::clean_up_on_a_thread(move || async move {
            if let Ok(mut conn) = PgConnection::connect(&url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .execute(&mut conn)
                    .await;
            }
        });
    }
}

/// Written straight to the process's stderr, past the test harness's output capture, once:
/// a skipped backend must not look like a passing one.
fn warn_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        crate::helpers::say_skipped(
            "TEST_POSTGRES_URL is not set, so the PostgreSQL tests did not run \
             (.ci/run sets it; e.g. TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test)",
        );
    });
}

async fn drop_stale_schemas(conn: &mut PgConnection, now: u64) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 't\\_%\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let created = name.split('_').nth(1).and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| t + STALE_AFTER_SECS < now) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&mut *conn)
                .await;
        }
    }
}
