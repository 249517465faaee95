//! What kind of callback a body is. Conversation API callbacks carry exactly one
//! trigger-specific top-level key; SMS API callbacks carry a `type` field.

use std::fmt;

/// Which Sinch API sent the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Conversation,
    Sms,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Conversation => "conversation",
            Api::Sms => "sms",
        }
    }

    pub fn parse(text: &str) -> Option<Api> {
        match text {
            "conversation" => Some(Api::Conversation),
            "sms" => Some(Api::Sms),
            _ => None,
        }
    }
}

macro_rules! triggers {
    (
        conversation { $($cvariant:ident => $cname:literal),* $(,)? }
        sms { $($svariant:ident => $sname:literal),* $(,)? }
    ) => {
        /// Every callback kind the receiver knows, plus `Unknown` so that a new Sinch
        /// trigger is stored and acknowledged, never rejected.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Trigger {
            $($cvariant,)*
            $($svariant,)*
            Unknown,
        }

        impl Trigger {
            /// All known triggers, for tests and `--help` listings.
            pub const ALL: &'static [Trigger] = &[$(Trigger::$cvariant,)* $(Trigger::$svariant,)* Trigger::Unknown];

            /// The name stored in `callbacks.trigger`: the webhook trigger enum for
            /// Conversation callbacks, the `type` value for SMS callbacks.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Trigger::$cvariant => $cname,)*
                    $(Trigger::$svariant => $sname,)*
                    Trigger::Unknown => "UNKNOWN",
                }
            }

            pub fn parse(name: &str) -> Trigger {
                match name {
                    $($cname => Trigger::$cvariant,)*
                    $($sname => Trigger::$svariant,)*
                    _ => Trigger::Unknown,
                }
            }

            /// The SMS trigger for a `type` value, if it is one Sinch documents.
            pub fn from_sms_type(kind: &str) -> Option<Trigger> {
                match kind {
                    $($sname => Some(Trigger::$svariant),)*
                    _ => None,
                }
            }

            pub fn api(self) -> Option<Api> {
                match self {
                    $(Trigger::$cvariant => Some(Api::Conversation),)*
                    $(Trigger::$svariant => Some(Api::Sms),)*
                    Trigger::Unknown => None,
                }
            }
        }
    };
}

triggers! {
    conversation {
        MessageInbound => "MESSAGE_INBOUND",
        MessageDelivery => "MESSAGE_DELIVERY",
        MessageSubmit => "MESSAGE_SUBMIT",
        EventInbound => "EVENT_INBOUND",
        EventDelivery => "EVENT_DELIVERY",
        ConversationStart => "CONVERSATION_START",
        ConversationStop => "CONVERSATION_STOP",
        ConversationDelete => "CONVERSATION_DELETE",
        ContactCreate => "CONTACT_CREATE",
        ContactDelete => "CONTACT_DELETE",
        ContactMerge => "CONTACT_MERGE",
        ContactUpdate => "CONTACT_UPDATE",
        ContactIdentitiesDuplication => "CONTACT_IDENTITIES_DUPLICATION",
        Capability => "CAPABILITY",
        OptIn => "OPT_IN",
        OptOut => "OPT_OUT",
        ChannelEvent => "CHANNEL_EVENT",
        Unsupported => "UNSUPPORTED",
        SmartConversation => "SMART_CONVERSATION",
        MessageInboundSmartConversationRedaction => "MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION",
        RecordNotification => "RECORD_NOTIFICATION",
    }
    sms {
        SmsDeliveryReport => "delivery_report_sms",
        MmsDeliveryReport => "delivery_report_mms",
        SmsRecipientDeliveryReport => "recipient_delivery_report_sms",
        MmsRecipientDeliveryReport => "recipient_delivery_report_mms",
        SmsInboundText => "mo_text",
        SmsInboundBinary => "mo_binary",
        SmsInboundMedia => "mo_media",
    }
}

/// Conversation callbacks: the top-level key that identifies each trigger, in the order they
/// are looked for. Aliases come from sources that disagree (see the protocol notes): every
/// spelling Sinch has been seen to use is accepted.
pub const CONVERSATION_KEYS: &[(&str, Trigger)] = &[
    ("message_delivery_report", Trigger::MessageDelivery),
    ("message", Trigger::MessageInbound),
    ("message_submit_notification", Trigger::MessageSubmit),
    ("event_delivery_report", Trigger::EventDelivery),
    ("event", Trigger::EventInbound),
    (
        "conversation_start_notification",
        Trigger::ConversationStart,
    ),
    ("conversation_stop_notification", Trigger::ConversationStop),
    (
        "conversation_delete_notification",
        Trigger::ConversationDelete,
    ),
    ("contact_create_notification", Trigger::ContactCreate),
    ("contact_delete_notification", Trigger::ContactDelete),
    ("contact_merge_notification", Trigger::ContactMerge),
    ("contact_update_notification", Trigger::ContactUpdate),
    (
        "duplicated_contact_identities_notification",
        Trigger::ContactIdentitiesDuplication,
    ),
    (
        "duplicated_identities_notification",
        Trigger::ContactIdentitiesDuplication,
    ),
    (
        "duplicated_identities",
        Trigger::ContactIdentitiesDuplication,
    ),
    ("capability_notification", Trigger::Capability),
    ("opt_in_notification", Trigger::OptIn),
    ("opt_out_notification", Trigger::OptOut),
    ("channel_event_notification", Trigger::ChannelEvent),
    ("unsupported_callback", Trigger::Unsupported),
    (
        "smart_conversation_notification",
        Trigger::SmartConversation,
    ),
    (
        "message_redaction",
        Trigger::MessageInboundSmartConversationRedaction,
    ),
    ("record_notification", Trigger::RecordNotification),
];

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &trigger in Trigger::ALL {
            assert_eq!(Trigger::parse(trigger.as_str()), trigger);
        }
        assert_eq!(Trigger::parse("SOMETHING_NEW"), Trigger::Unknown);
    }

    #[test]
    fn every_conversation_trigger_has_a_key() {
        for &trigger in Trigger::ALL {
            if trigger.api() == Some(Api::Conversation) {
                assert!(
                    CONVERSATION_KEYS.iter().any(|(_, t)| *t == trigger),
                    "{trigger} has no top-level key"
                );
            }
        }
    }
}
