//! Callbacks that are journaled (and so visible in `callbacks`) but change no other table.

use crate::store::{PendingCallback, Plan};

pub fn known(callback: &PendingCallback) -> Plan {
    tracing::info!(
        callback_id = callback.id,
        trigger = callback.trigger.as_str(),
        "callback kept in the journal; this trigger changes no other table"
    );
    Plan::Apply(Vec::new())
}

/// A callback of a kind this version does not know: Sinch added a trigger, or something
/// else signs with the same secret. Loud, so operators learn about it.
pub fn unknown(callback: &PendingCallback) -> Plan {
    tracing::warn!(
        callback_id = callback.id,
        "callback of an unknown kind kept in the journal (trigger UNKNOWN); see its body in the callbacks table"
    );
    Plan::Apply(Vec::new())
}
