//! Facts: made (with the cause's trace id, the sender, the origin), published on the
//! bus to an audience, and, once the bus took them, handed to the exports (webhooks, the
//! RabbitMQ exchange); a sender's answer waits until the exports stored them. Events
//! from outside (the internal API, RabbitMQ's inbound queue) are injected here too.

use super::{Conn, ErrorCode, Hub, HubState, Refusal, id_text};
use crate::bus::amqp::Inject;
use crate::bus::{Audience, Delivery, RoomKey, Stored};
use crate::dialect::{Registry, Route};
use crate::event::{Event, Meta, Origin, Target};
use crate::telemetry::BusLabels;
use serde_json::{Map, Value};
use std::sync::Arc;

impl HubState {
    /// A fact caused by `cause` (its trace id follows), from `conn`'s user.
    pub(super) fn fact(
        &self,
        name: &str,
        body: Map<String, Value>,
        cause: Option<&Event>,
        conn: &Conn,
    ) -> Event {
        let mut meta = Meta::fresh();
        if let Some(c) = cause {
            meta.trace_id = c.meta.trace_id.clone();
            meta.carried = c.meta.carried.clone();
        }
        meta.user = Some(conn.user.clone());
        meta.origin = Some(Origin {
            dialect: conn.dialect.clone(),
            instance: self.instance.to_string(),
            connection: conn.socket_id.to_string(),
        });
        Event {
            name: Arc::from(name),
            body,
            meta,
        }
    }

    /// Publishes a fact to an audience, and exports it; what the exports say settles
    /// once they stored it.
    pub(super) fn publish(&self, event: Event, audience: Audience) -> Result<Stored, Refusal> {
        self.publish_with(event, audience, true)
    }

    /// Publishes a fact and waits until the exports stored it: what a sender's answer
    /// waits for, so that an event counts as accepted only once nothing can lose it. A
    /// kept fact is appended to its rooms' history first, and carries its offset.
    pub(super) async fn commit(&self, event: Event, audience: Audience) -> Result<(), Refusal> {
        let stored = self.publish_kept(event, audience).await?;
        stored.wait().await.map_err(|e| {
            tracing::error!("an event was delivered but its export could not be stored: {e}");
            Refusal::new(
                ErrorCode::Unavailable,
                format!("delivered, but it could not be stored for export: {e}"),
            )
        })
    }

    /// Appends a kept fact to its rooms' history (once, before any instance fans it
    /// out), then publishes and exports it: at once in process, through the appender
    /// (`append.rs`) with Redis.
    pub(super) async fn publish_kept(
        &self,
        event: Event,
        audience: Audience,
    ) -> Result<Stored, Refusal> {
        let mut d = Delivery {
            event,
            audience,
            offset: None,
        };
        if self.history.is_shared() && self.history.keeps(&d.event, &d.audience) {
            if !self.bus.ready() {
                // Redis is down: the bus decides (queue or refuse), without an offset.
                self.history.skip(&d);
                return self.publish_delivery(d, true);
            }
            if let Some(appender) = self.appender.get() {
                let wants = self.exports.get().is_some_and(|e| !e.is_empty());
                let (to, from) = if wants {
                    let (a, b) = tokio::sync::oneshot::channel();
                    (Some(a), Some(b))
                } else {
                    (None, None)
                };
                appender
                    .try_send(super::append::Job {
                        delivery: d,
                        stored: to,
                    })
                    .map_err(|_| {
                        Refusal::new(
                            ErrorCode::Unavailable,
                            "too many facts waiting for the room history: try again",
                        )
                    })?;
                return match from {
                    None => Ok(Stored::done()),
                    Some(rx) => match rx.await {
                        Ok(r) => r,
                        Err(_) => Err(Refusal::new(ErrorCode::Unavailable, "the hub stopped")),
                    },
                };
            }
        }
        d.offset = self.history.append(&d).await;
        self.publish_delivery(d, true)
    }

    /// Publishes a fact; with `export`, also to the exports (without: a fact only the
    /// clients care about, like a presence snapshot).
    pub(super) fn publish_with(
        &self,
        event: Event,
        audience: Audience,
        export: bool,
    ) -> Result<Stored, Refusal> {
        let d = Delivery {
            event,
            audience,
            offset: None,
        };
        self.publish_delivery(d, export)
    }

    pub(super) fn publish_delivery(
        &self,
        mut d: Delivery,
        export: bool,
    ) -> Result<Stored, Refusal> {
        self.widen(&mut d, export);
        let event = &d.event;
        tracing::debug!(trace_id = %event.meta.trace_id, event = %event.name, bus = self.bus.kind(), export, offset = d.offset.as_ref().map(|o| o.seq), "fact published");
        // Exported only once the bus took it: a fact refused to its sender (who may
        // retry) must not have reached a webhook or the exchange.
        let exported =
            (export && self.exports.get().is_some_and(|e| !e.is_empty())).then(|| event.clone());
        let t0 = std::time::Instant::now();
        let r = self.bus.publish(d).map_err(|e| {
            self.metrics
                .bus_refused
                .get_or_create(&BusLabels {
                    bus: self.bus.kind(),
                })
                .inc();
            Refusal::new(ErrorCode::Unavailable, e.to_string())
        });
        self.metrics
            .bus_publish_seconds
            .get_or_create(&BusLabels {
                bus: self.bus.kind(),
            })
            .observe(t0.elapsed().as_secs_f64());
        r?;
        Ok(exported.map_or_else(Stored::done, |event| self.export(&event)))
    }

    /// Hands a fact to the exports (webhooks, the RabbitMQ exchange).
    pub(super) fn export(&self, event: &Event) -> Stored {
        match self.exports.get() {
            Some(exports) if !exports.is_empty() => {
                let reg = self.registry();
                Stored::all(exports.iter().map(|e| e.export(event, &reg)))
            }
            _ => Stored::done(),
        }
    }
}

impl HubState {
    async fn inject_event(&self, event: Event) -> Result<Stored, Refusal> {
        let audience = self.route_audience(&event)?;
        self.publish_kept(event, audience).await
    }

    /// Where an event from outside goes: `meta.target`, else the vocabulary's route.
    pub(super) fn route_audience(&self, event: &Event) -> Result<Audience, Refusal> {
        Ok(match &event.meta.target {
            Some(Target::Room(id)) => Audience::room(RoomKey::conversation(id)),
            Some(Target::User(id)) => Audience::room(RoomKey::user(id)),
            Some(Target::Broadcast) => Audience {
                everyone: true,
                ..Audience::default()
            },
            Some(Target::Connection(_)) => {
                return Err(Refusal::new(
                    ErrorCode::BadEvent,
                    "a connection target cannot be reached from outside",
                ));
            }
            None => {
                let reg = self.registry();
                let route = reg.vocab.event(&event.name).and_then(|e| e.route.clone());
                let id = |field: &str| id_text(event.field(field));
                match route {
                    Some(Route::Room(f)) => {
                        Audience::room(RoomKey::conversation(&id(&f).ok_or_else(|| {
                            Refusal::new(ErrorCode::BadEvent, format!("`{f}` is missing"))
                        })?))
                    }
                    Some(Route::User(f)) => {
                        Audience::room(RoomKey::user(&id(&f).ok_or_else(|| {
                            Refusal::new(ErrorCode::BadEvent, format!("`{f}` is missing"))
                        })?))
                    }
                    None => {
                        return Err(Refusal::new(
                            ErrorCode::BadEvent,
                            format!("`{}` has no route: give it meta.target", event.name),
                        ));
                    }
                }
            }
        })
    }
}

impl Inject for HubState {
    fn registry(&self) -> Arc<Registry> {
        HubState::registry(self)
    }

    fn inject(&self, event: Event) -> crate::bus::amqp::Injecting<'_> {
        Box::pin(async move {
            self.inject_event(event)
                .await
                .map(drop)
                .map_err(|r| r.message)
        })
    }
}

impl Hub {
    /// Delivers an event from outside (a service, RabbitMQ) to its target's clients on
    /// every instance: `meta.target`, else the vocabulary's route; exported like the
    /// hub's own facts.
    ///
    /// # Errors
    /// No target, or the bus did not take it.
    pub async fn inject(&self, event: Event) -> Result<Stored, Refusal> {
        self.state.inject_event(event).await
    }

    /// Where RabbitMQ's inbound queue delivers: this hub.
    pub fn injector(&self) -> std::sync::Weak<dyn Inject> {
        Arc::downgrade(&(self.state.clone() as Arc<dyn Inject>))
    }
}
