//! Notifications that are not about a message's delivery: consents and capability checks
//! (kept by identity, or by contact when they name no identity; decided by
//! `domain::consent`), channel events, Smart Conversations analyses and record notifications.

use chrono::{DateTime, Utc};

use super::Outputs;
use super::sql;
use super::tx::{Kind, Tx, v};
use crate::callback::payload::{
    Analysis, BatchStatus, CapabilityReport, ChannelEvent, ConsentKind, ConsentReport,
    RecordNotification,
};
use crate::domain::consent::{self, ConsentState, Subject};
use crate::domain::{events, time};
use crate::store::PendingCallback;

/// Records the notification, then applies `domain::consent::decide` to the stored consent
/// (a consent not stored yet is inserted as the rule decides for nothing known). It is kept
/// by identity, or by contact when the notification names no identity.
pub(super) async fn consent<T: Tx>(
    tx: &mut T,
    report: &ConsentReport,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::consent(report, callback.received_at);
    let (table, key, state) = match consent::subject(report) {
        Subject::Identity(identity) => (&*sql::CONSENTS, identity, &tx.texts().consent_state),
        Subject::Contact(contact) => (
            &*sql::CONTACT_CONSENTS,
            contact,
            &tx.texts().contact_consent_state,
        ),
    };
    let history = [
        v(&report.channel),
        v(&report.identity),
        v(report.kind.as_str()),
        v(&report.status),
        v(&report.request_id),
        v(&report.contact_id),
        v(&report.error),
        v(at),
        v(callback.id),
        v(now),
    ];
    tx.execute(&table.insert_history, &history).await?;
    let opted_in = report.kind == ConsentKind::OptIn;
    let first = consent::decide(&ConsentState::default(), at, report.succeeded());
    let insert = [
        v(&report.channel),
        v(&report.identity),
        v(first.decides.then_some(opted_in)),
        v(first.decides.then_some(at)),
        v(report.kind.as_str()),
        v(&report.status),
        v(&report.request_id),
        v(&report.error),
        v(at),
        v(&report.contact_id),
        v(now),
    ];
    let changed = if tx.execute(&table.insert, &insert).await? > 0 {
        true
    } else {
        let found = tx
            .fetch(
                state,
                &[v(&report.channel), v(key)],
                &[Kind::Time, Kind::Time],
            )
            .await?;
        let state = found
            .first()
            .map_or_else(ConsentState::default, |row| ConsentState {
                last_event_at: row.time(0),
                consented_at: row.time(1),
            });
        update_consent(
            tx,
            table,
            key,
            report,
            consent::decide(&state, at, report.succeeded()),
            at,
            now,
        )
        .await?
    };
    if changed {
        let key = [v(&report.channel), v(key)];
        let found = tx
            .fetch(&table.select_consented, &key, &[Kind::Bool])
            .await?;
        let consented = found.first().and_then(|row| row.bool(0));
        out.events.push(events::consent(report, consented, at));
    }
    Ok(())
}

/// Applies a decided change to a stored consent; returns whether anything changed.
async fn update_consent<T: Tx>(
    tx: &mut T,
    table: &sql::ConsentTable,
    key: &str,
    report: &ConsentReport,
    change: consent::ConsentChange,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, T::Error> {
    if change.newest {
        let last = [
            v(report.kind.as_str()),
            v(&report.status),
            v(&report.request_id),
            v(&report.error),
            v(at),
            v(&report.contact_id),
            v(now),
            v(&report.channel),
            v(key),
        ];
        tx.execute(&table.update_last, &last).await?;
    }
    if change.decides {
        let decision = [
            v(report.kind == ConsentKind::OptIn),
            v(at),
            v(now),
            v(&report.channel),
            v(key),
        ];
        tx.execute(&table.update_decision, &decision).await?;
    }
    Ok(change.changes_anything())
}

pub(super) async fn capability<T: Tx>(
    tx: &mut T,
    report: &CapabilityReport,
    received_at: DateTime<Utc>,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::capability(report, received_at);
    let values = [
        v(&report.channel),
        v(&report.identity),
        v(&report.status),
        v(&report.channel_capabilities),
        v(&report.reason),
        v(&report.request_id),
        v(&report.contact_id),
        v(at),
        v(now),
    ];
    let upsert = match consent::subject_of(report.identity.as_deref(), report.contact_id.as_deref())
    {
        Subject::Identity(_) => &*sql::UPSERT_CAPABILITY,
        Subject::Contact(_) => &*sql::UPSERT_CONTACT_CAPABILITY,
    };
    if tx.execute(upsert, &values).await? > 0 {
        out.events.push(events::capability(report, at));
    }
    Ok(())
}

/// Kept with its message (or conversation), once per callback.
pub(super) async fn analysis<T: Tx>(
    tx: &mut T,
    analysis: &Analysis,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::envelope(
        analysis.event_time,
        analysis.accepted_time,
        callback.received_at,
    );
    let values = [
        v(&analysis.message_id),
        v(&analysis.conversation_id),
        v(&analysis.contact_id),
        v(&analysis.channel),
        v(&analysis.identity),
        v(&analysis.results),
        v(at),
        v(callback.id),
        v(now),
    ];
    if tx.execute(sql::INSERT_ANALYSIS, &values).await? > 0 {
        out.events.push(events::analysis(analysis, at));
    }
    Ok(())
}

pub(super) async fn record<T: Tx>(
    tx: &mut T,
    record: &RecordNotification,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::envelope(
        record.event_time,
        record.accepted_time,
        callback.received_at,
    );
    let values = [
        v(&record.entity_id),
        v(&record.record_status),
        v(at),
        v(callback.id),
        v(now),
    ];
    if tx.execute(sql::INSERT_RECORD, &values).await? > 0 {
        out.events.push(events::record(record, at));
    }
    Ok(())
}

/// Kept in the batch's history; it becomes the batch's state only if it is newer.
pub(super) async fn batch_status<T: Tx>(
    tx: &mut T,
    batch: &BatchStatus,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::envelope(batch.event_time, batch.accepted_time, callback.received_at);
    let values = [
        v(&batch.batch_id),
        v(batch.app_id.as_deref()),
        v(&batch.status),
        v(batch.total_messages),
        v(batch.successful_messages),
        v(batch.failed_messages),
        v(batch.processing_time_ms),
        v(at),
        v(callback.id),
        v(now),
    ];
    tx.execute(sql::INSERT_BATCH_STATUS, &values).await?;
    if tx.execute(sql::UPSERT_BATCH_STATE, &values).await? > 0 {
        out.events.push(events::batch_status(batch, at));
    }
    Ok(())
}

/// Recorded in the channel's history; the newest of its type per app and channel is its state.
pub(super) async fn channel_event<T: Tx>(
    tx: &mut T,
    event: &ChannelEvent,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::envelope(event.event_time, event.accepted_time, callback.received_at);
    let values = [
        v(event.app_id.as_deref().unwrap_or_default()),
        v(&event.channel),
        v(&event.event_type),
        v(&event.additional_data),
        v(at),
        v(callback.id),
        v(now),
    ];
    tx.execute(sql::INSERT_CHANNEL_EVENT, &values).await?;
    if tx.execute(sql::UPSERT_CHANNEL_STATE, &values).await? > 0 {
        out.events.push(events::channel_event(event, at));
    }
    Ok(())
}
