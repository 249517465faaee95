//! Applying each effect other than a delivery report in bulk: the statements it runs, and
//! the state change it reports when something changed. The decisions are the domain's.

use chrono::{DateTime, Utc};

use super::Outputs;
use super::aggregates;
use super::notices;
use super::sql;
use super::status::{self, APP_EVENTS, MESSAGES};
use super::tx::{Kind, Tx, v};
use crate::callback::payload::{
    ContactChange, ContactEvent, ConversationChange, ConversationState, IdentityDuplication,
    InboundMessage, SmsBatchReport, SmsDeliveryReport, SmsInbound, SubmittedMessage,
};
use crate::domain::contact::{self, ContactWrite, Identities};
use crate::domain::{Effect, conversation, events, sms, time};
use crate::store::PendingCallback;

/// Applies one effect; state changes and history rows go to `out`.
pub(super) async fn apply<T: Tx>(
    tx: &mut T,
    effect: &Effect,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let received_at = callback.received_at;
    match effect {
        Effect::MessageStatus(report) => {
            status::apply_one(tx, &MESSAGES, report, callback, now, out).await
        }
        Effect::AppEventStatus(report) => {
            status::apply_one(tx, &APP_EVENTS, report, callback, now, out).await
        }
        Effect::InboundMessage(message) => inbound_message(tx, message, now, out).await,
        Effect::Redaction(message) => redaction(tx, message, callback, now, out).await,
        Effect::MessageSubmitted(submitted) => {
            self::submitted(tx, submitted, callback, now, out).await
        }
        Effect::ContactEvent(event) => contact_event(tx, event, callback, now, out).await,
        Effect::Consent(report) => notices::consent(tx, report, callback, now, out).await,
        Effect::Capability(report) => notices::capability(tx, report, received_at, now, out).await,
        Effect::ChannelEvent(event) => notices::channel_event(tx, event, callback, now, out).await,
        Effect::Analysis(analysis) => notices::analysis(tx, analysis, callback, now, out).await,
        Effect::Record(record) => notices::record(tx, record, callback, now, out).await,
        Effect::BatchStatus(batch) => notices::batch_status(tx, batch, callback, now, out).await,
        Effect::Contact { change, at } => {
            self::contact(tx, change, at.unwrap_or(received_at), now, out).await
        }
        Effect::Conversation { change, state, at } => {
            let at = at.unwrap_or(received_at);
            self::conversation(tx, *change, state, at, now, out).await
        }
        Effect::IdentityDuplications { duplications, at } => {
            let at = at.unwrap_or(received_at);
            self::duplications(tx, duplications, callback.id, at, out).await
        }
        Effect::SmsDelivery(report) => sms_delivery(tx, report, callback, now, out).await,
        Effect::SmsBatch(batch) => sms_batch(tx, batch, callback.id, now, out).await,
        Effect::SmsInbound(message) => sms_inbound(tx, message, callback.id, now, out).await,
        Effect::Call(event) => aggregates::call(tx, event, callback, now, out).await,
        Effect::Verification(step) => aggregates::verification(tx, step, callback, now, out).await,
        Effect::Number(update) => aggregates::number(tx, update, callback, now, out).await,
    }
}

async fn inbound_message<T: Tx>(
    tx: &mut T,
    message: &InboundMessage,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::inbound_message(message);
    let values = [
        v(&message.message_id),
        v(at),
        v(message.accepted_time),
        v(&message.channel),
        v(&message.identity),
        v(&message.conversation_id),
        v(&message.contact_id),
        v(&message.text),
        v(&message.content),
        v(now),
    ];
    if tx.execute(sql::INSERT_INBOUND_MESSAGE, &values).await? > 0 {
        out.events.push(events::inbound_message(message, at));
    }
    Ok(())
}

/// The redacted text and content replace what is stored; the redaction is recorded once.
async fn redaction<T: Tx>(
    tx: &mut T,
    message: &InboundMessage,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::inbound_message(message).unwrap_or(callback.received_at);
    let values = [
        v(&message.message_id),
        v(time::inbound_message(message)),
        v(message.accepted_time),
        v(&message.channel),
        v(&message.identity),
        v(&message.conversation_id),
        v(&message.contact_id),
        v(&message.text),
        v(&message.content),
        v(at),
        v(now),
    ];
    tx.execute(sql::REDACT_MESSAGE, &values).await?;
    let record = [v(&message.message_id), v(callback.id), v(at), v(now)];
    if tx.execute(sql::INSERT_REDACTION, &record).await? > 0 {
        out.events.push(events::redacted(message, at));
    }
    Ok(())
}

/// A submit is recorded (earliest `submitted_at`, a history entry) but is never a status,
/// so it cannot move one backwards.
async fn submitted<T: Tx>(
    tx: &mut T,
    submitted: &SubmittedMessage,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::submitted(submitted, callback.received_at);
    tx.execute(
        sql::ENSURE_OUTBOUND_MESSAGE,
        &[v(&submitted.message_id), v(now)],
    )
    .await?;
    let update = [
        v(at),
        v(&submitted.channel),
        v(&submitted.identity),
        v(&submitted.conversation_id),
        v(&submitted.contact_id),
        v(&submitted.content),
        v(now),
        v(&submitted.message_id),
    ];
    tx.execute(sql::UPDATE_SUBMITTED, &update).await?;
    let history = [
        v(&submitted.message_id),
        v(at),
        v(&submitted.channel),
        v(callback.id),
        v(false),
        v(now),
    ];
    if tx.execute(sql::INSERT_SUBMITTED_HISTORY, &history).await? > 0 {
        out.events.push(events::submitted(submitted, at));
    }
    Ok(())
}

async fn contact_event<T: Tx>(
    tx: &mut T,
    event: &ContactEvent,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::contact_event(event, callback.received_at);
    let values = [
        v(&event.event_id),
        v(&event.kind),
        v(&event.channel),
        v(&event.identity),
        v(&event.conversation_id),
        v(&event.contact_id),
        v(at),
        v(&event.payload),
        v(callback.id),
        v(now),
    ];
    if tx.execute(sql::INSERT_CONTACT_EVENT, &values).await? > 0 {
        out.events.push(events::contact_event(event, at));
    }
    Ok(())
}

/// Writes what `domain::contact::plan` says; identities follow only a notification that
/// changed something.
async fn contact<T: Tx>(
    tx: &mut T,
    change: &ContactChange,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let plan = contact::plan(change, at);
    let mut changed = false;
    for write in &plan.writes {
        changed |= upsert_contact(tx, write, at, now).await?;
    }
    if let Some((from, to)) = plan.move_identities {
        tx.execute(sql::MOVE_IDENTITIES, &[v(to), v(now), v(from)])
            .await?;
    }
    if !changed {
        return Ok(());
    }
    let subject = plan.subject;
    if plan.identities == Identities::Replace {
        tx.execute(sql::DELETE_IDENTITIES, &[v(&subject.contact_id)])
            .await?;
    }
    if plan.identities != Identities::Keep {
        for (channel, identity) in &subject.identities {
            let values = [v(channel), v(identity), v(&subject.contact_id), v(now)];
            tx.execute(sql::UPSERT_IDENTITY, &values).await?;
        }
    }
    out.events
        .push(events::contact(change, subject, plan.merged, at));
    Ok(())
}

/// Writes a contact row if this notification is newer than what is stored; returns whether
/// it did.
async fn upsert_contact<T: Tx>(
    tx: &mut T,
    write: &ContactWrite<'_>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, T::Error> {
    let contact = write.contact;
    let values = [
        v(&contact.contact_id),
        v(&contact.display_name),
        v(&contact.email),
        v(&contact.external_id),
        v(&contact.metadata),
        v(&contact.language),
        v(&contact.channel_priority),
        v(write.merged_into),
        v(write.deleted_at),
        v(at),
        v(now),
    ];
    Ok(tx.execute(sql::UPSERT_CONTACT, &values).await? > 0)
}

async fn conversation<T: Tx>(
    tx: &mut T,
    change: ConversationChange,
    state: &ConversationState,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let active = conversation::active(change, state);
    let values = [
        v(&state.conversation_id),
        v(&state.app_id),
        v(&state.contact_id),
        v(active),
        v(&state.active_channel),
        v(&state.metadata),
        v(at),
        v(now),
    ];
    let current = tx.execute(sql::UPSERT_CONVERSATION, &values).await?;
    let stamp = [v(at), v(now), v(&state.conversation_id)];
    let stamped = tx.execute(sql::stamp_conversation(change), &stamp).await?;
    if current > 0 || stamped > 0 {
        out.events
            .push(events::conversation(change, state, active, at));
    }
    Ok(())
}

async fn duplications<T: Tx>(
    tx: &mut T,
    duplications: &[IdentityDuplication],
    callback_id: i64,
    at: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    for duplication in duplications {
        let contact_ids = serde_json::to_string(&duplication.contact_ids).unwrap_or_default();
        let values = [
            v(&duplication.channel),
            v(contact_ids),
            v(callback_id),
            v(at),
        ];
        if tx.execute(sql::INSERT_DUPLICATION, &values).await? > 0 {
            out.events.push(events::duplication(duplication, at));
        }
    }
    Ok(())
}

async fn sms_delivery<T: Tx>(
    tx: &mut T,
    report: &SmsDeliveryReport,
    callback: &PendingCallback,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let at = time::sms_delivery(report, callback.received_at);
    let key = [v(&report.batch_id), v(&report.recipient)];
    tx.execute(
        sql::ENSURE_SMS_DELIVERY,
        &[v(&report.batch_id), v(&report.recipient), v(now)],
    )
    .await?;
    let mut found = tx
        .fetch(
            &tx.texts().sms_delivery_state,
            &key,
            &[Kind::Text, Kind::Time],
        )
        .await?;
    let (status, status_at) = match found.first_mut() {
        Some(row) => (row.text(0), row.time(1)),
        None => (None, None),
    };
    let applied = sms::sms_supersedes(status.as_deref().zip(status_at), (&report.status, at));
    if applied {
        let update = [
            v(&report.status),
            v(report.code),
            v(at),
            v(&report.client_reference),
            v(&report.operator),
            v(now),
            v(&report.batch_id),
            v(&report.recipient),
        ];
        tx.execute(sql::UPDATE_SMS_DELIVERY, &update).await?;
    }
    let history = [
        v(&report.batch_id),
        v(&report.recipient),
        v(&report.status),
        v(report.code),
        v(at),
        v(callback.id),
        v(applied),
        v(now),
    ];
    tx.execute(sql::INSERT_SMS_DELIVERY_HISTORY, &history)
        .await?;
    if applied {
        out.events.push(events::sms_delivery(report, status, at));
    }
    Ok(())
}

/// Batch reports are snapshots without a time of their own: the latest to arrive wins.
async fn sms_batch<T: Tx>(
    tx: &mut T,
    batch: &SmsBatchReport,
    callback_id: i64,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let values = [
        v(&batch.batch_id),
        v(&batch.kind),
        v(batch.total_message_count),
        v(&batch.statuses),
        v(&batch.client_reference),
        v(callback_id),
        v(now),
    ];
    if tx.execute(sql::UPSERT_SMS_BATCH, &values).await? > 0 {
        out.events.push(events::sms_batch(batch));
    }
    Ok(())
}

async fn sms_inbound<T: Tx>(
    tx: &mut T,
    message: &SmsInbound,
    callback_id: i64,
    now: DateTime<Utc>,
    out: &mut Outputs,
) -> Result<(), T::Error> {
    let values = [
        v(&message.id),
        v(&message.kind),
        v(&message.from),
        v(&message.to),
        v(&message.text),
        v(&message.payload),
        v(message.received_at),
        v(message.sent_at),
        v(&message.operator_id),
        v(&message.client_reference),
        v(callback_id),
        v(now),
    ];
    if tx.execute(sql::INSERT_SMS_INBOUND, &values).await? > 0 {
        out.events.push(events::sms_inbound(message));
    }
    Ok(())
}
