//! The domain rules, with no database and no I/O: what each callback changes, decided over
//! typed rows. The store runs the statements (`store::processing`); every decision it needs
//! is a function here, with table-driven unit tests beside it.
//!
//! - `status`: which delivery report is a message's (or app event's) current status, and
//!   what a report changes in its row.
//! - `consent`: which notification is a consent's last state, and which decides it.
//! - `contact`: which rows a contact notification writes, and what becomes of identities.
//! - `conversation`: whether a conversation is active after a change.
//! - `sms`: which delivery report is an SMS recipient's current status.
//! - `time`: when things happened, by the payload's own times where it has them.
//! - `events`: the state changes reported to the live stream and the outbox.

pub mod call;
pub mod consent;
pub mod contact;
pub mod conversation;
mod effect;
pub mod events;
pub mod number;
pub mod sms;
pub mod status;
pub mod time;
pub mod verification;

pub use effect::{Effect, NewEvent, Plan};
