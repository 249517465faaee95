//! Publishing to NATS JetStream: subject `<prefix>.<event type>`, the event id as
//! `Nats-Msg-Id` so JetStream drops a message published twice (after a crash between the
//! publish and recording it).

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use tokio::sync::OnceCell;

use super::retry::Attempt;
use super::{Destination, EventIds};
use crate::store::EventRecord;

/// How long JetStream remembers message ids, for streams this receiver creates: longer than
/// a delivery lease, so a message published again after a restart is still recognised.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

pub struct NatsDestination {
    name: String,
    url: String,
    stream: String,
    subject_prefix: String,
    ids: EventIds,
    timeout: Duration,
    /// Connected, and the stream exists. Set once; until then each attempt tries again.
    context: OnceCell<jetstream::Context>,
}

impl NatsDestination {
    pub fn new(
        url: &str,
        stream: &str,
        subject_prefix: &str,
        ids: EventIds,
        timeout: Duration,
    ) -> Self {
        Self {
            name: format!("nats:{stream}"),
            url: url.to_owned(),
            stream: stream.to_owned(),
            subject_prefix: subject_prefix.to_owned(),
            ids,
            timeout,
            context: OnceCell::new(),
        }
    }

    async fn context(&self) -> Result<&jetstream::Context, String> {
        self.context
            .get_or_try_init(|| async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(self.timeout)
                    .connect(self.url.as_str())
                    .await
                    .map_err(|e| format!("cannot connect to NATS: {e}"))?;
                let context = jetstream::new(client);
                context
                    .get_or_create_stream(stream::Config {
                        name: self.stream.clone(),
                        subjects: vec![format!("{}.>", self.subject_prefix)],
                        duplicate_window: DUPLICATE_WINDOW,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| format!("cannot create or find stream {}: {e}", self.stream))?;
                tracing::info!(stream = %self.stream, "publishing events to NATS JetStream");
                Ok(context)
            })
            .await
    }

    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.{event_type}", self.subject_prefix)
    }
}

#[async_trait::async_trait]
impl Destination for NatsDestination {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, event: &EventRecord) -> Attempt {
        let failed = |error: String| Attempt::Failed {
            status: None,
            error,
            retry_after: None,
        };
        let published = tokio::time::timeout(self.timeout, async {
            let context = self.context().await?;
            let message = PublishMessage::build()
                .message_id(self.ids.of(event.id))
                .payload(event.to_json().to_string().into());
            let ack = context
                .send_publish(self.subject(&event.kind), message)
                .await
                .map_err(|e| format!("publish failed: {e}"))?;
            ack.await
                .map_err(|e| format!("JetStream did not acknowledge: {e}"))
        })
        .await;
        match published {
            Ok(Ok(_ack)) => Attempt::Delivered { status: None },
            Ok(Err(error)) => failed(error),
            Err(_) => failed("timed out (FORWARD_TIMEOUT_SECS)".to_owned()),
        }
    }
}
