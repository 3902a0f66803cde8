//! Where the hub's facts go besides its clients: the exports (signed webhooks, the
//! RabbitMQ exchange). The server attaches them; the hub hands each exported fact to
//! every one of them once the bus took it, and a sender's answer waits until each says
//! the fact is stored ([`Stored`]).

use crate::dialect::Registry;
use crate::event::Event;
use std::future::Future;
use std::pin::Pin;

/// A fact's way out of the gateway.
pub trait Export: Send + Sync {
    /// Takes a fact the hub published; never waits. The answer settles once the fact
    /// is stored where it cannot be lost.
    fn export(&self, event: &Event, registry: &Registry) -> Stored;
}

/// The wait for one export to store a fact.
type Pending = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Settles once an exported fact is stored.
#[must_use = "a sender's answer waits for it; drop it only where nobody is answered"]
pub struct Stored(Option<Pending>);

impl Stored {
    /// Already stored (or nothing to store).
    pub fn done() -> Stored {
        Stored(None)
    }

    /// Stored once `f` resolves.
    pub fn when(f: impl Future<Output = Result<(), String>> + Send + 'static) -> Stored {
        Stored(Some(Box::pin(f)))
    }

    /// Stored once every one of `stored` is.
    pub fn all(stored: impl IntoIterator<Item = Stored>) -> Stored {
        let mut pending: Vec<_> = stored.into_iter().filter_map(|s| s.0).collect();
        match pending.len() {
            0 => Stored::done(),
            1 => Stored(pending.pop()),
            _ => Stored::when(async move {
                for f in pending {
                    f.await?;
                }
                Ok(())
            }),
        }
    }

    /// Waits until stored.
    ///
    /// # Errors
    /// The store failed: what it said.
    pub async fn wait(self) -> Result<(), String> {
        match self.0 {
            None => Ok(()),
            Some(f) => f.await,
        }
    }
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Stored(pending)"
        } else {
            "Stored(done)"
        })
    }
}
