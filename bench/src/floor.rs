//! The floor: the least a receiver must do (read the body, verify the HMAC, answer 200),
//! with no storage and no logging. The receiver's throughput as a fraction of the floor's,
//! measured in the same run, says how much its durability costs on this machine.
//!
//! It runs on a runtime and threads of its own, as the receiver runs in a process of its
//! own, so it does not share the load generator's scheduler.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::sync::oneshot;

use sinch_webhooks::http::WEBHOOK_PATH;
use sinch_webhooks::signature::{
    ALGORITHM_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SignatureHeaders, TIMESTAMP_HEADER, Verifier,
};

/// The same tolerance as the receiver's default.
const TOLERANCE_SECS: u64 = 300;

/// A running floor server.
pub struct Floor {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Floor {
    /// Starts the floor on `127.0.0.1`, on a free port.
    pub fn start(secret: &str) -> anyhow::Result<Floor> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("cannot listen on 127.0.0.1 for the floor")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let verifier = Arc::new(Verifier::new(secret.into(), None, TOLERANCE_SECS));
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("bench-floor".into())
            .spawn(move || serve(listener, verifier, stopped))
            .context("cannot start the floor's thread")?;
        Ok(Floor {
            address,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}{WEBHOOK_PATH}", self.address)
    }

    /// Stops the server and waits for its thread.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .context("waiting for the floor")?
            .map_err(|_| anyhow::anyhow!("the floor's thread panicked"))?
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn serve(
    listener: std::net::TcpListener,
    verifier: Arc<Verifier>,
    stopped: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-floor-worker")
        .build()
        .context("cannot start the floor's runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let app = Router::new()
            .route(WEBHOOK_PATH, post(verify_only))
            .with_state(verifier);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .context("the floor server failed")
    })
}

async fn verify_only(
    State(verifier): State<Arc<Verifier>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let get = |name: &str| headers.get(name).map(|v| v.to_str().map_err(|_| ()));
    let signature = SignatureHeaders {
        signature: get(SIGNATURE_HEADER),
        nonce: get(NONCE_HEADER),
        timestamp: get(TIMESTAMP_HEADER),
        algorithm: get(ALGORITHM_HEADER),
    };
    let now = chrono::Utc::now().timestamp();
    // Same answer shapes as the receiver, so both send about as many bytes.
    match verifier.verify(&signature, &body, now) {
        Ok(_) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"accepted","callback_id":0}"#,
        ),
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"signature_mismatch"}"#,
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::load::{Connection, Target};
    use crate::mix::{Expect, Generator, GeneratorOptions, Mix};

    #[tokio::test]
    async fn the_floor_accepts_good_signatures_and_refuses_bad_ones() {
        let floor = Floor::start("floor-secret-0123456789").unwrap();
        let target = Target::resolve(&floor.url()).await.unwrap();
        let options = GeneratorOptions {
            mix: crate::mix::DEFAULT_MIX.parse::<Mix>().unwrap(),
            duplicates: 0.0,
            bad_signatures: 0.5,
            secret: "floor-secret-0123456789".into(),
            seed: 1,
            run_ms: 1,
        };
        let mut items = VecDeque::new();
        Generator::new(&options, 0).fill(&mut items, 40).unwrap();
        let mut connection = Connection::open(floor.address).await.unwrap();
        for item in items {
            let expect = item.expect;
            let (status, _) = connection.post(&target, item).await.unwrap();
            let wanted = if expect == Expect::Unauthorized {
                401
            } else {
                200
            };
            assert_eq!(status, wanted);
        }
        floor.stop().await.unwrap();
    }
}
