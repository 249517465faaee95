//! Prometheus metrics: every name in one place, recorded through the `metrics` facade and
//! rendered by the Prometheus exporter at `GET /metrics`.

use std::sync::OnceLock;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CALLBACKS: &str = "sinch_webhooks_callbacks_total";
pub const REJECTED: &str = "sinch_webhooks_rejected_total";
pub const VERIFIED: &str = "sinch_webhooks_verified_total";
pub const FAIL_SAFE_REFUSALS: &str = "sinch_webhooks_fail_safe_refusals_total";
pub const OAUTH2_TOKENS: &str = "sinch_webhooks_oauth2_tokens_total";
pub const ACK_SECONDS: &str = "sinch_webhooks_ack_seconds";
pub const JOURNAL_BATCH_SIZE: &str = "sinch_webhooks_journal_batch_size";
pub const JOURNAL_COMMIT_SECONDS: &str = "sinch_webhooks_journal_commit_seconds";
pub const SPOOL_WRITE_SECONDS: &str = "sinch_webhooks_spool_write_seconds";
pub const SPOOL_FLUSH_SECONDS: &str = "sinch_webhooks_spool_flush_seconds";
pub const BACKLOG: &str = "sinch_webhooks_unprocessed_backlog";
pub const OLDEST_UNPROCESSED_SECONDS: &str = "sinch_webhooks_oldest_unprocessed_age_seconds";
pub const PROCESSING_LAG_SECONDS: &str = "sinch_webhooks_processing_lag_seconds";
pub const PROCESSING_BATCH_SIZE: &str = "sinch_webhooks_processing_batch_size";
pub const PROCESSED: &str = "sinch_webhooks_processed_total";
pub const HANDLER_FAILURES: &str = "sinch_webhooks_handler_failures_total";
pub const FORWARD_ATTEMPTS: &str = "sinch_webhooks_forward_attempts_total";
pub const FORWARD_ATTEMPT_SECONDS: &str = "sinch_webhooks_forward_attempt_seconds";
pub const OUTBOX_DELIVERIES: &str = "sinch_webhooks_outbox_deliveries";
pub const BUILD_INFO: &str = "sinch_webhooks_build_info";
pub const FAILED: &str = "sinch_webhooks_failed";
pub const INFLIGHT_BYTES: &str = "sinch_webhooks_inflight_bytes";
pub const ANSWERS: &str = "sinch_webhooks_answers_total";
pub const ANSWER_SECONDS: &str = "sinch_webhooks_answer_seconds";
pub const ANSWERS_NOT_STORED: &str = "sinch_webhooks_answers_not_stored_total";

/// Every name above: what the dashboard and the alert rules in `deploy/` may query (a test
/// checks them against this list).
pub const ALL: &[&str] = &[
    CALLBACKS,
    REJECTED,
    VERIFIED,
    ACK_SECONDS,
    JOURNAL_BATCH_SIZE,
    JOURNAL_COMMIT_SECONDS,
    SPOOL_WRITE_SECONDS,
    SPOOL_FLUSH_SECONDS,
    BACKLOG,
    OLDEST_UNPROCESSED_SECONDS,
    PROCESSING_LAG_SECONDS,
    PROCESSING_BATCH_SIZE,
    PROCESSED,
    HANDLER_FAILURES,
    FORWARD_ATTEMPTS,
    FORWARD_ATTEMPT_SECONDS,
    OUTBOX_DELIVERIES,
    BUILD_INFO,
    FAILED,
    INFLIGHT_BYTES,
    FAIL_SAFE_REFUSALS,
    OAUTH2_TOKENS,
    ANSWERS,
    ANSWER_SECONDS,
    ANSWERS_NOT_STORED,
];

/// Latency buckets from 100 µs to 10 s: acks are sub-millisecond to a few ms, processing lag
/// milliseconds to seconds, retries longer.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
const PROCESSING_BATCH_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0];
/// Answers are decided in milliseconds by the policy and in up to `ANSWER_TIMEOUT_MS` (at
/// most 4.5 s) by an application: finer steps near the deadline, so the alert on p99
/// approaching it is not a guess between 1 and 2.5 s.
const ANSWER_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75,
    2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns the handle that renders it; `None`
/// if another recorder was installed first (then nothing is exported).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(JOURNAL_BATCH_SIZE.into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(PROCESSING_BATCH_SIZE.into()),
                        PROCESSING_BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(ANSWER_SECONDS.into()), ANSWER_BUCKETS)
                })
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            // A counter that first appears at 1 has no increase() in Prometheus: exported at
            // 0 from the start, the first answer not stored fires its alert.
            counter!(ANSWERS_NOT_STORED).absolute(0);
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_ingestion();
    describe_answers();
    describe_processing();
}

/// The synchronous lane: answers to ICE, ACE, PIE and verification requests.
fn describe_answers() {
    describe_counter!(
        ANSWERS,
        "Answers given to callbacks Sinch waits on, by source, question (ice, ace, pie, \
         verification_request) and origin (application, policy, fallback, journal)."
    );
    describe_histogram!(
        ANSWER_SECONDS,
        Unit::Seconds,
        "Time from a question's arrival to its answer (journal, ANSWER_URL and storing included), by question and origin."
    );
    describe_counter!(
        ANSWERS_NOT_STORED,
        "Answers given but not stored (the database failed, or was not done by ANSWER_DEADLINE_MS): a retry may be answered anew."
    );
}

/// The webhook, the journal and the spool.
fn describe_ingestion() {
    describe_counter!(
        CALLBACKS,
        "Authenticated callbacks, by source, trigger and outcome (accepted, duplicate)."
    );
    describe_counter!(
        REJECTED,
        "Requests refused at a webhook source, by source and reason code."
    );
    describe_counter!(
        FAIL_SAFE_REFUSALS,
        "Authentication failures answered 503 inside a source's fail-safe window, by source and reason code."
    );
    describe_counter!(
        OAUTH2_TOKENS,
        "POST /oauth2/token requests, by source and outcome (issued, refused)."
    );
    describe_counter!(
        VERIFIED,
        "Callbacks that authenticated, by source and by the label of the credential that \
         matched: a rotation is done when the old label stops growing."
    );
    describe_histogram!(
        PROCESSING_BATCH_SIZE,
        Unit::Count,
        "Callbacks taken up by one processing transaction."
    );
    describe_histogram!(
        ACK_SECONDS,
        Unit::Seconds,
        "Time from request to answer for verified callbacks."
    );
    describe_histogram!(
        JOURNAL_BATCH_SIZE,
        Unit::Count,
        "Callbacks made durable by one journal commit (SQLite: by one flush of the spool)."
    );
    describe_histogram!(
        JOURNAL_COMMIT_SECONDS,
        Unit::Seconds,
        "Time from the start of a journal commit until it is durable and answered."
    );
    describe_histogram!(
        SPOOL_WRITE_SECONDS,
        Unit::Seconds,
        "SQLite: time the spool writer took to commit what was queued (without the flush)."
    );
    describe_histogram!(
        SPOOL_FLUSH_SECONDS,
        Unit::Seconds,
        "SQLite: time one fdatasync of the spool's WAL took."
    );
    describe_gauge!(
        INFLIGHT_BYTES,
        Unit::Bytes,
        "Webhook body bytes held between accept and flush (capped by MAX_INFLIGHT_BYTES)."
    );
}

/// Processing, forwarding and the process itself.
fn describe_processing() {
    describe_gauge!(
        BACKLOG,
        Unit::Count,
        "Journaled callbacks not processed yet."
    );
    describe_gauge!(
        OLDEST_UNPROCESSED_SECONDS,
        Unit::Seconds,
        "Age of the oldest unprocessed callback."
    );
    describe_histogram!(
        PROCESSING_LAG_SECONDS,
        Unit::Seconds,
        "Time from journaling to processing."
    );
    describe_counter!(PROCESSED, "Callbacks processed, by trigger and result.");
    describe_counter!(
        HANDLER_FAILURES,
        "Failed processing attempts (retried), by trigger."
    );
    describe_counter!(
        FORWARD_ATTEMPTS,
        "Forwarding attempts, by destination and result (delivered, retry, dead)."
    );
    describe_histogram!(
        FORWARD_ATTEMPT_SECONDS,
        Unit::Seconds,
        "Time one forwarding attempt took, by destination."
    );
    describe_gauge!(
        OUTBOX_DELIVERIES,
        Unit::Count,
        "Forwarded events by destination and state (pending, delivered, dead)."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version is a label.");
    describe_gauge!(
        FAILED,
        "1 once a failure that needs a restart was latched, by component; the process then stops."
    );
}
