//! A conversation's current fields follow the newest notification; when it started,
//! stopped and was deleted is kept whatever order the notifications arrive in.

use crate::callback::payload::{ConversationChange, ConversationState};

/// Whether a conversation is active after `change`: as the notification says, else as the
/// change implies.
pub fn active(change: ConversationChange, state: &ConversationState) -> Option<bool> {
    state.active.or(match change {
        ConversationChange::Started => Some(true),
        ConversationChange::Stopped => Some(false),
        ConversationChange::Deleted => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_is_active_as_said_else_as_its_change_implies() {
        let state = |active| ConversationState {
            conversation_id: "c-1".into(),
            app_id: None,
            contact_id: None,
            active,
            active_channel: None,
            metadata: None,
        };
        let cases = [
            (ConversationChange::Started, None, Some(true)),
            (ConversationChange::Stopped, None, Some(false)),
            (ConversationChange::Deleted, None, None),
            (ConversationChange::Started, Some(false), Some(false)),
            (ConversationChange::Deleted, Some(true), Some(true)),
        ];
        for (change, said, expected) in cases {
            assert_eq!(
                active(change, &state(said)),
                expected,
                "{change:?} {said:?}"
            );
        }
    }
}
