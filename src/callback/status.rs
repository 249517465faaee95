//! Conversation delivery statuses, as Sinch names them. Which one becomes current is a
//! domain rule: `domain::status`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    QueuedOnChannel,
    Delivered,
    Read,
    Failed,
    /// Failed on one channel, falling back to the next: progress, but not past DELIVERED.
    SwitchingChannel,
    /// A status this receiver does not know yet; stored, never current.
    Other(String),
}

impl DeliveryStatus {
    pub fn parse(text: &str) -> DeliveryStatus {
        match text {
            "QUEUED_ON_CHANNEL" => DeliveryStatus::QueuedOnChannel,
            "DELIVERED" => DeliveryStatus::Delivered,
            "READ" => DeliveryStatus::Read,
            "FAILED" => DeliveryStatus::Failed,
            "SWITCHING_CHANNEL" => DeliveryStatus::SwitchingChannel,
            other => DeliveryStatus::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::QueuedOnChannel => "QUEUED_ON_CHANNEL",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Read => "READ",
            DeliveryStatus::Failed => "FAILED",
            DeliveryStatus::SwitchingChannel => "SWITCHING_CHANNEL",
            DeliveryStatus::Other(s) => s,
        }
    }

    /// How far along the delivery is; `None` for statuses that never become current.
    pub fn rank(&self) -> Option<u8> {
        match self {
            DeliveryStatus::QueuedOnChannel | DeliveryStatus::SwitchingChannel => Some(1),
            DeliveryStatus::Delivered => Some(2),
            DeliveryStatus::Read | DeliveryStatus::Failed => Some(3),
            DeliveryStatus::Other(_) => None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, DeliveryStatus::Read | DeliveryStatus::Failed)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
