//! CONTACT_* and CONVERSATION_* notifications, and identity duplication reports.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{PayloadError, conversation, non_empty, parse_time, raw_json, required};

/// A contact as Sinch describes it in a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactState {
    pub contact_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub metadata: Option<String>,
    pub language: Option<String>,
    /// `channel_priority` as JSON.
    pub channel_priority: Option<String>,
    /// (channel, identity) pairs.
    pub identities: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactChange {
    Created(ContactState),
    Updated(ContactState),
    Deleted(ContactState),
    /// `deleted` was merged into `preserved`, which keeps its identities.
    Merged {
        preserved: ContactState,
        deleted: ContactState,
    },
}

impl ContactChange {
    pub fn name(&self) -> &'static str {
        match self {
            ContactChange::Created(_) => "created",
            ContactChange::Updated(_) => "updated",
            ContactChange::Deleted(_) => "deleted",
            ContactChange::Merged { .. } => "merged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationState {
    pub conversation_id: String,
    pub app_id: Option<String>,
    pub contact_id: Option<String>,
    pub active: Option<bool>,
    pub active_channel: Option<String>,
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationChange {
    Started,
    Stopped,
    Deleted,
}

impl ConversationChange {
    pub fn name(self) -> &'static str {
        match self {
            ConversationChange::Started => "started",
            ConversationChange::Stopped => "stopped",
            ConversationChange::Deleted => "deleted",
        }
    }
}

/// Contacts that share an identity on a channel, as Sinch reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDuplication {
    pub channel: Option<String>,
    pub contact_ids: Vec<String>,
}

#[derive(Deserialize)]
struct ContactFields {
    id: Option<String>,
    display_name: Option<String>,
    email: Option<String>,
    external_id: Option<String>,
    metadata: Option<String>,
    language: Option<String>,
    channel_priority: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "super::null_as_empty")]
    channel_identities: Vec<Identity>,
}

#[derive(Deserialize)]
struct Identity {
    channel: Option<String>,
    identity: Option<String>,
}

#[derive(Deserialize)]
struct OneContact {
    contact: ContactFields,
}

#[derive(Deserialize)]
struct MergeFields {
    preserved_contact: ContactFields,
    deleted_contact: ContactFields,
}

#[derive(Deserialize)]
struct OneConversation {
    conversation: ConversationFields,
}

#[derive(Deserialize)]
struct ConversationFields {
    id: Option<String>,
    app_id: Option<String>,
    contact_id: Option<String>,
    active: Option<bool>,
    active_channel: Option<String>,
    metadata: Option<String>,
}

#[derive(Deserialize)]
struct DuplicationFields {
    #[serde(default, deserialize_with = "super::null_as_empty")]
    duplicated_identities: Vec<DuplicatedIdentity>,
}

#[derive(Deserialize)]
struct DuplicatedIdentity {
    channel: Option<String>,
    #[serde(default, deserialize_with = "super::null_as_empty")]
    contact_ids: Vec<String>,
}

/// A contact notification; `trigger` is one of the CONTACT_* names (not duplication).
pub fn parse_contact(
    body: &str,
    trigger: &'static str,
) -> Result<(ContactChange, Option<DateTime<Utc>>), PayloadError> {
    let (key, change): (&str, fn(ContactState) -> ContactChange) = match trigger {
        "CONTACT_CREATE" => ("contact_create_notification", ContactChange::Created),
        "CONTACT_UPDATE" => ("contact_update_notification", ContactChange::Updated),
        "CONTACT_DELETE" => ("contact_delete_notification", ContactChange::Deleted),
        _ => {
            let (envelope, fields): (_, MergeFields) =
                conversation(body, "contact_merge_notification", trigger)?;
            let merged = ContactChange::Merged {
                preserved: contact_state(fields.preserved_contact, trigger)?,
                deleted: contact_state(fields.deleted_contact, trigger)?,
            };
            return Ok((merged, event_time(&envelope)));
        }
    };
    let (envelope, fields): (_, OneContact) = conversation(body, key, trigger)?;
    Ok((
        change(contact_state(fields.contact, trigger)?),
        event_time(&envelope),
    ))
}

pub fn parse_conversation(
    body: &str,
    change: ConversationChange,
) -> Result<(ConversationState, Option<DateTime<Utc>>), PayloadError> {
    let (trigger, key) = match change {
        ConversationChange::Started => ("CONVERSATION_START", "conversation_start_notification"),
        ConversationChange::Stopped => ("CONVERSATION_STOP", "conversation_stop_notification"),
        ConversationChange::Deleted => ("CONVERSATION_DELETE", "conversation_delete_notification"),
    };
    let (envelope, fields): (_, OneConversation) = conversation(body, key, trigger)?;
    let c = fields.conversation;
    let state = ConversationState {
        conversation_id: required(c.id, trigger, "conversation.id")?,
        app_id: non_empty(c.app_id),
        contact_id: non_empty(c.contact_id),
        active: c.active,
        active_channel: non_empty(c.active_channel),
        metadata: non_empty(c.metadata),
    };
    Ok((state, event_time(&envelope)))
}

pub fn parse_identity_duplication(
    body: &str,
) -> Result<(Vec<IdentityDuplication>, Option<DateTime<Utc>>), PayloadError> {
    const TRIGGER: &str = "CONTACT_IDENTITIES_DUPLICATION";
    // Sources disagree on the key; accept each spelling the classifier accepts.
    let keys = [
        "duplicated_contact_identities_notification",
        "duplicated_identities_notification",
    ];
    for key in keys {
        if let Ok((envelope, fields)) = conversation::<DuplicationFields>(body, key, TRIGGER) {
            return Ok((
                duplications(fields.duplicated_identities),
                event_time(&envelope),
            ));
        }
    }
    let (envelope, list): (_, Option<Vec<DuplicatedIdentity>>) =
        conversation(body, "duplicated_identities", TRIGGER)?;
    Ok((
        duplications(list.unwrap_or_default()),
        event_time(&envelope),
    ))
}

fn duplications(list: Vec<DuplicatedIdentity>) -> Vec<IdentityDuplication> {
    list.into_iter()
        .map(|d| IdentityDuplication {
            channel: non_empty(d.channel),
            contact_ids: d.contact_ids,
        })
        .collect()
}

fn contact_state(
    fields: ContactFields,
    trigger: &'static str,
) -> Result<ContactState, PayloadError> {
    Ok(ContactState {
        contact_id: required(fields.id, trigger, "contact id")?,
        display_name: non_empty(fields.display_name),
        email: non_empty(fields.email),
        external_id: non_empty(fields.external_id),
        metadata: non_empty(fields.metadata),
        language: non_empty(fields.language),
        channel_priority: raw_json(fields.channel_priority),
        identities: fields
            .channel_identities
            .into_iter()
            .filter_map(|i| Some((non_empty(i.channel)?, non_empty(i.identity)?)))
            .collect(),
    })
}

/// Contact and conversation notifications carry no event time; when Sinch accepted the
/// change is the best order there is.
fn event_time(envelope: &super::Envelope) -> Option<DateTime<Utc>> {
    parse_time(envelope.event_time.clone()).or_else(|| parse_time(envelope.accepted_time.clone()))
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn reads_a_created_contact_with_its_identities() {
        let (change, at) =
            parse_contact(&fixture("contact_create.json"), "CONTACT_CREATE").unwrap();
        let ContactChange::Created(contact) = change else {
            panic!("{change:?}")
        };
        assert_eq!(contact.contact_id, "01HCONT000000000000000000E");
        assert_eq!(
            contact.identities,
            vec![("SMS".to_owned(), "46701234567".to_owned())]
        );
        assert_eq!(contact.channel_priority.as_deref(), Some(r#"["SMS"]"#));
        assert!(at.is_some());
    }

    #[test]
    fn reads_a_merge() {
        let body = r#"{"accepted_time":"2025-03-04T12:10:00Z","contact_merge_notification":{"preserved_contact":{"id":"keep","channel_identities":[{"channel":"SMS","identity":"1"}]},"deleted_contact":{"id":"gone","channel_identities":[{"channel":"WHATSAPP","identity":"1"}]}}}"#;
        let (change, _) = parse_contact(body, "CONTACT_MERGE").unwrap();
        let ContactChange::Merged { preserved, deleted } = change else {
            panic!("{change:?}")
        };
        assert_eq!(
            (preserved.contact_id.as_str(), deleted.contact_id.as_str()),
            ("keep", "gone")
        );
    }

    #[test]
    fn reads_a_conversation_start_without_times() {
        let (state, at) = parse_conversation(
            &fixture("conversation_start.json"),
            ConversationChange::Started,
        )
        .unwrap();
        assert_eq!(state.conversation_id, "01HCONV000000000000000000D");
        assert_eq!(state.active, Some(true));
        assert_eq!(state.active_channel.as_deref(), Some("RCS"));
        assert_eq!(at, None);
    }

    #[test]
    fn reads_duplications_under_every_key_spelling() {
        let (list, _) =
            parse_identity_duplication(&fixture("contact_identities_duplication.json")).unwrap();
        assert_eq!(list[0].contact_ids.len(), 2);
        let alias = r#"{"duplicated_identities":[{"channel":"SMS","contact_ids":["a","b"]}]}"#;
        assert_eq!(
            parse_identity_duplication(alias).unwrap().0[0]
                .channel
                .as_deref(),
            Some("SMS")
        );
    }

    #[test]
    fn a_list_sent_as_null_is_an_empty_list() {
        let create =
            r#"{"contact_create_notification":{"contact":{"id":"c1","channel_identities":null}}}"#;
        let (change, _) = parse_contact(create, "CONTACT_CREATE").unwrap();
        let ContactChange::Created(contact) = change else {
            panic!("{change:?}")
        };
        assert!(contact.identities.is_empty());
        let duplication = r#"{"duplicated_identities":[{"channel":"SMS","contact_ids":null}]}"#;
        assert!(
            parse_identity_duplication(duplication).unwrap().0[0]
                .contact_ids
                .is_empty()
        );
        let none = r#"{"duplicated_identities":null}"#;
        assert!(parse_identity_duplication(none).unwrap().0.is_empty());
    }
}
