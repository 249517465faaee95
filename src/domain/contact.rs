//! Contact notifications: which contact rows one writes, and what becomes of identities.
//! A row is written only if the notification is newer than what is stored (the store's
//! upsert compares `last_event_at`); identities follow the notification that changed it.

use chrono::{DateTime, Utc};

use crate::callback::payload::{ContactChange, ContactState};

/// One contact row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactWrite<'c> {
    pub contact: &'c ContactState,
    /// For the deleted side of a merge: the contact it became part of.
    pub merged_into: Option<&'c str>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// What becomes of the identities of the contact a notification is about, if it changed
/// anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identities {
    /// The identities listed are the contact's identities now.
    Replace,
    /// The contact keeps what it had and what it gained from a merge, plus those listed.
    Add,
    /// A deleted contact's identities are left as they were.
    Keep,
}

/// What a contact notification writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPlan<'c> {
    pub writes: Vec<ContactWrite<'c>>,
    /// A merge moves the deleted contact's identities to the preserved one: (from, to).
    pub move_identities: Option<(&'c str, &'c str)>,
    /// The contact the notification is about: the preserved one of a merge.
    pub subject: &'c ContactState,
    /// The deleted contact of a merge.
    pub merged: Option<&'c String>,
    pub identities: Identities,
}

pub fn plan(change: &ContactChange, at: DateTime<Utc>) -> ContactPlan<'_> {
    let write = |contact, merged_into, deleted_at| ContactWrite {
        contact,
        merged_into,
        deleted_at,
    };
    match change {
        ContactChange::Created(contact) | ContactChange::Updated(contact) => ContactPlan {
            writes: vec![write(contact, None, None)],
            move_identities: None,
            subject: contact,
            merged: None,
            identities: Identities::Replace,
        },
        ContactChange::Deleted(contact) => ContactPlan {
            writes: vec![write(contact, None, Some(at))],
            move_identities: None,
            subject: contact,
            merged: None,
            identities: Identities::Keep,
        },
        ContactChange::Merged { preserved, deleted } => ContactPlan {
            writes: vec![
                write(preserved, None, None),
                write(deleted, Some(preserved.contact_id.as_str()), Some(at)),
            ],
            move_identities: Some((&deleted.contact_id, &preserved.contact_id)),
            subject: preserved,
            merged: Some(&deleted.contact_id),
            identities: Identities::Add,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn contact(id: &str) -> ContactState {
        ContactState {
            contact_id: id.into(),
            display_name: None,
            email: None,
            external_id: None,
            metadata: None,
            language: None,
            channel_priority: None,
            identities: vec![("SMS".into(), "46700000001".into())],
        }
    }

    #[test]
    fn each_change_writes_its_rows_and_treats_identities_its_way() {
        let at = Utc.with_ymd_and_hms(2025, 3, 4, 12, 0, 0).unwrap();
        let (a, b) = (contact("a"), contact("b"));
        let merged = ContactChange::Merged {
            preserved: a.clone(),
            deleted: b.clone(),
        };
        // (change, rows written as (id, merged into, deleted), identities, subject, moved)
        let cases = [
            (
                ContactChange::Created(a.clone()),
                vec![("a", None, None)],
                Identities::Replace,
                "a",
                None,
            ),
            (
                ContactChange::Updated(a.clone()),
                vec![("a", None, None)],
                Identities::Replace,
                "a",
                None,
            ),
            (
                ContactChange::Deleted(a.clone()),
                vec![("a", None, Some(at))],
                Identities::Keep,
                "a",
                None,
            ),
            (
                merged,
                vec![("a", None, None), ("b", Some("a"), Some(at))],
                Identities::Add,
                "a",
                Some(("b", "a")),
            ),
        ];
        for (change, rows, identities, subject, moved) in cases {
            let plan = plan(&change, at);
            let written: Vec<_> = plan
                .writes
                .iter()
                .map(|w| (w.contact.contact_id.as_str(), w.merged_into, w.deleted_at))
                .collect();
            assert_eq!(written, rows, "{}", change.name());
            assert_eq!(plan.identities, identities, "{}", change.name());
            assert_eq!(plan.subject.contact_id, subject);
            assert_eq!(plan.move_identities, moved);
        }
    }
}
