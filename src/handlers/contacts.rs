//! Contacts and conversations, kept current; identity duplications recorded.

use super::single;
use crate::callback::Trigger;
use crate::callback::payload::{
    ConversationChange, parse_contact, parse_conversation, parse_identity_duplication,
};
use crate::store::{Effect, Plan};

/// CONTACT_CREATE, CONTACT_UPDATE, CONTACT_DELETE, CONTACT_MERGE.
pub fn contact(body: &str, trigger: Trigger) -> Plan {
    single(parse_contact(body, trigger.as_str()), |(change, at)| {
        Effect::Contact { change, at }
    })
}

/// CONVERSATION_START, CONVERSATION_STOP, CONVERSATION_DELETE.
pub fn conversation(body: &str, trigger: Trigger) -> Plan {
    let change = match trigger {
        Trigger::ConversationStart => ConversationChange::Started,
        Trigger::ConversationStop => ConversationChange::Stopped,
        _ => ConversationChange::Deleted,
    };
    single(parse_conversation(body, change), |(state, at)| {
        Effect::Conversation { change, state, at }
    })
}

pub fn identity_duplication(body: &str) -> Plan {
    single(parse_identity_duplication(body), |(duplications, at)| {
        Effect::IdentityDuplications { duplications, at }
    })
}
