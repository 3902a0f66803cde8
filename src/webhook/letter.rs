//! A dead letter: a delivery that used up its schedule (or could not be sent at all),
//! as it is kept (in the embedded store or RabbitMQ), listed and replayed.

use super::send::Payload;
use serde::{Deserialize, Serialize};

/// A delivery that used up its schedule (or could not be sent at all).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The endpoint's name.
    pub endpoint: String,
    /// The event id (`evt_…`).
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last one failed.
    pub last_error: String,
    /// When it was dead-lettered (ISO-8601).
    pub at: String,
    /// The body.
    pub body: String,
}

impl DeadLetter {
    /// The payload to send again.
    pub fn payload(&self) -> Payload {
        Payload {
            id: self.id.clone(),
            kind: self.kind.clone(),
            body: self.body.clone(),
            trace: String::new(),
        }
    }
}
