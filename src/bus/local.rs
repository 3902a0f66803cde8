//! The in-process bus: one instance, nothing to install. A publish is delivered at
//! once, on the publisher's task, to this instance's connections.

use super::{Bus, BusError, Deliver, Delivery, RoomKey};
use std::sync::{OnceLock, Weak};

/// The in-process bus.
#[derive(Default)]
pub struct LocalBus {
    target: OnceLock<Weak<dyn Deliver>>,
}

impl LocalBus {
    /// A bus with nothing attached yet.
    pub fn new() -> LocalBus {
        LocalBus::default()
    }
}

impl Bus for LocalBus {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn attach(&self, deliver: Weak<dyn Deliver>) {
        let _ = self.target.set(deliver);
    }

    fn publish(&self, delivery: Delivery) -> Result<(), BusError> {
        let target = self
            .target
            .get()
            .and_then(Weak::upgrade)
            .ok_or(BusError::Unavailable("the hub has stopped".into()))?;
        target.deliver(&delivery);
        Ok(())
    }

    fn interest(&self, _room: &RoomKey, _on: bool) {}

    fn ready(&self) -> bool {
        true
    }
}
