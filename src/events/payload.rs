//! What events carry: the envelope the feed and webhooks send, and one `data`
//! type per event type. Emitting takes these types (`emit_at_commit`), and the
//! OpenAPI document's `webhooks` are generated from them, so what is sent and
//! what is documented cannot differ.

use crate::domain::EventType;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An event's `data`, tied to its one event type.
pub trait Payload: Serialize {
    const TYPE: EventType;
}

/// One event as the feed lists it and a webhook receives it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope {
    /// Unique per event (`evt_…`); a receiver de-duplicates on it.
    pub id: String,
    /// The tenant's event sequence number: commit order, no gaps skipped by the feed.
    pub seq: i64,
    /// The tenant's name.
    pub tenant: String,
    #[serde(rename = "type")]
    #[schema(value_type = EventType)]
    pub event_type: String,
    /// RFC 3339, UTC.
    #[serde(rename = "occurredAt")]
    pub occurred_at: String,
    pub subject: Subject,
    /// The event type's payload (see the `webhooks` of this document).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// The user an event is about; empty for tenant-wide events.
#[derive(Debug, Serialize, ToSchema)]
pub struct Subject {
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `user.suspended`: the IdP (or a DELETE held by the brake) deactivated the
/// user; end their sessions now.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSuspended {}

/// `user.reactivated`: a suspended user is active again; their disposal is cancelled.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserReactivated {}

/// `user.restored`: a suspended account was taken up again by a SCIM POST of the same person.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRestored {}

/// `user.disposed`: the user's PII is gone; apply the receipt to your own data.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDisposed {
    #[serde(rename = "disposalId")]
    pub disposal_id: String,
    /// Receipt lines per action (`transfer`, `orphan`, `delete`, …).
    pub counts: BTreeMap<String, u64>,
    /// Path of the receipt (`GET`, admin scope): `/admin/v1/disposals/{disposalId}`.
    pub receipt: String,
}

/// `disposal.held`: a disposal waits for an admin (brake or legal hold).
#[derive(Debug, Serialize, ToSchema)]
pub struct DisposalHeld {
    #[serde(rename = "disposalId")]
    pub disposal_id: String,
    /// Why it is held: `brake` or `legal_hold`.
    pub reason: String,
}

/// `disposal.scheduled`: a suspended user will be disposed at `dueAt` unless reactivated.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisposalScheduled {
    #[serde(rename = "dueAt")]
    pub due_at: String,
}

/// `content.reassigned`: ledger items (and, for a transfer, user data) changed owner.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentReassigned {
    /// The new owner's user id.
    pub to: String,
    /// Items moved.
    pub items: u64,
    /// User-data lines moved (a whole-user transfer only).
    #[serde(rename = "userData", skip_serializing_if = "Option::is_none")]
    pub user_data: Option<u64>,
}

/// `tombstone.lifted`: a disposed person's identifiers may be provisioned again.
#[derive(Debug, Serialize, ToSchema)]
pub struct TombstoneLifted {
    #[serde(rename = "tombstoneId")]
    pub tombstone_id: String,
    pub reason: String,
}

/// `brake.tripped`: disposals exceeded the hourly limit; new ones are held until reset.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrakeTripped {
    #[serde(rename = "maxDisposalsPerHour")]
    pub max_disposals_per_hour: u32,
}

/// `webhook.paused`: an endpoint failed for the whole retry window; resume it by API.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPaused {
    /// Failed attempts before the pause.
    pub attempts: i64,
}

macro_rules! payloads {
    ($($ty:ident => $event:ident,)+) => {
        $(impl Payload for $ty {
            const TYPE: EventType = EventType::$event;
        })+

        /// Every event type with its payload's schema name and schema, in
        /// `EventType::ALL` order (the OpenAPI `webhooks`).
        pub fn schemas() -> Vec<(EventType, String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)> {
            let mut all = vec![$((
                EventType::$event,
                <$ty as ToSchema>::name().into_owned(),
                <$ty as utoipa::PartialSchema>::schema(),
            ),)+];
            all.sort_by_key(|(t, _, _)| EventType::ALL.iter().position(|a| a == t));
            all
        }
    };
}

payloads! {
    UserSuspended => UserSuspended,
    UserReactivated => UserReactivated,
    UserRestored => UserRestored,
    UserDisposed => UserDisposed,
    DisposalHeld => DisposalHeld,
    DisposalScheduled => DisposalScheduled,
    ContentReassigned => ContentReassigned,
    TombstoneLifted => TombstoneLifted,
    BrakeTripped => BrakeTripped,
    WebhookPaused => WebhookPaused,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event type has exactly one payload type.
    #[test]
    fn every_event_type_has_one_payload() {
        let types: Vec<EventType> = schemas().into_iter().map(|(t, _, _)| t).collect();
        assert_eq!(types, EventType::ALL);
    }
}
