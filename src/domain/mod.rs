//! The domain vocabulary: user and disposal states, causes, receipt actions,
//! gate answers and event types, each word's text written once here.
//!
//! The bottom layer: it imports nothing from the rest of the crate and knows
//! no database (the store maps these to its TEXT columns).

pub mod journal;

use std::fmt;
use std::str::FromStr;

/// Text that names no word of a vocabulary (a stored value or a request
/// parameter): an error, never a default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} '{text}'")]
pub struct UnknownWord {
    pub vocabulary: &'static str,
    pub text: String,
}

/// An enum whose variants have one text form each: `as_str`, `FromStr`,
/// `Display` and serde all use that one table.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident ($label:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every word, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The text form (stored, sent and matched).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownWord { vocabulary: $label, text: s.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        /// The OpenAPI schema: a string, one of the texts.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text,)+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Who acts: the tenant every query is scoped by, its name (policies are per
/// name), the actor recorded in audit rows (a token's name, or `scheduler`),
/// the user the token acts as, and the user a stored schedule names as the
/// `caller` target (grace expiry acts for the token that suspended the
/// person; it overrides `acts_as`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub tenant_id: String,
    pub tenant_name: String,
    pub actor: String,
    pub acts_as: Option<String>,
    pub caller_user_id: Option<String>,
}

vocabulary! {
    /// Where a user is in their life cycle (`users.state`).
    UserState ("user state") {
        Active = "active",
        Suspended = "suspended",
        /// The IdP deleted them; their disposal is held (brake or legal hold).
        DeletedPending = "deleted_pending",
        Disposed = "disposed",
        /// A placeholder owner for content whose owner is not provisioned.
        Stub = "stub",
    }
}

impl UserState {
    /// The states a SCIM read sees and the unique identifiers cover. The
    /// store renders this list as literal SQL (`store::vocab`).
    pub const VISIBLE: [UserState; 2] = [UserState::Active, UserState::Suspended];

    /// Whether a SCIM read sees a user in this state.
    pub const fn is_visible(self) -> bool {
        matches!(self, UserState::Active | UserState::Suspended)
    }

    /// The state a document's `active` flag asks for.
    pub const fn from_active(active: bool) -> UserState {
        if active {
            UserState::Active
        } else {
            UserState::Suspended
        }
    }

    /// The one transition `active` makes, for the SCIM path and the disposal
    /// service alike: an active user is suspended (the grace clock starts), a
    /// suspended one reactivated (it stops); anything else keeps its state and
    /// clock (a repeated `active=false` keeps the first suspension's time).
    pub const fn on_active(self, active: bool) -> ActiveChange {
        match (self, active) {
            (UserState::Active, false) => ActiveChange::Suspend,
            (UserState::Suspended, true) => ActiveChange::Reactivate,
            _ => ActiveChange::Unchanged,
        }
    }
}

/// What `UserState::on_active` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveChange {
    Suspend,
    Reactivate,
    Unchanged,
}

vocabulary! {
    /// Where a disposal is (`disposals.state`).
    DisposalState ("disposal state") {
        Scheduled = "scheduled",
        Held = "held",
        Running = "running",
        Done = "done",
        Cancelled = "cancelled",
    }
}

impl DisposalState {
    /// The open states: at most one open disposal per user (a partial unique
    /// index whose predicate is this list).
    pub const OPEN: [DisposalState; 2] = [DisposalState::Scheduled, DisposalState::Held];
}

vocabulary! {
    /// Why a disposal exists (`disposals.cause`).
    Cause ("disposal cause") {
        /// A SCIM DELETE.
        Delete = "delete",
        /// An admin's dispose-now.
        Admin = "admin",
        /// A suspension's grace period ran out.
        Grace = "grace",
        /// A new user took a tombstoned identifier of a suspended holder.
        Reuse = "reuse",
    }
}

vocabulary! {
    /// What a disposal does to one item or data category (receipt lines,
    /// plan items, `disposal_items.action`).
    ItemAction ("item action") {
        Transfer = "transfer",
        Orphan = "orphan",
        Delete = "delete",
        Keep = "keep",
        Archive = "archive",
        Anonymize = "anonymize",
    }
}

vocabulary! {
    /// The SSO gate's answer.
    GateDecision ("gate decision") {
        Allow = "allow",
        AllowJit = "allow_jit",
        Deny = "deny",
    }
}

vocabulary! {
    /// Why the SSO gate answered as it did.
    GateReason ("gate reason") {
        Active = "active",
        Suspended = "suspended",
        Deprovisioned = "deprovisioned",
        Conflict = "conflict",
        Unknown = "unknown",
    }
}

vocabulary! {
    /// The type of an outbox event (what webhooks receive).
    EventType ("event type") {
        UserSuspended = "user.suspended",
        UserReactivated = "user.reactivated",
        UserRestored = "user.restored",
        UserDisposed = "user.disposed",
        DisposalHeld = "disposal.held",
        DisposalScheduled = "disposal.scheduled",
        ContentReassigned = "content.reassigned",
        TombstoneLifted = "tombstone.lifted",
        BrakeTripped = "brake.tripped",
        WebhookPaused = "webhook.paused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + FromStr<Err = UnknownWord> + fmt::Display,
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let mut texts = std::collections::HashSet::new();
        for &w in all {
            let text = w.to_string();
            assert!(texts.insert(text.clone()), "{text} names two words");
            assert_eq!(text.parse::<T>(), Ok(w));
            let json = serde_json::to_value(w).expect("serialises");
            assert_eq!(json, serde_json::Value::String(text.clone()));
            assert_eq!(serde_json::from_value::<T>(json).expect("parses"), w);
        }
        for bad in ["", "nope", "Active", " active"] {
            if !texts.contains(bad) {
                let e = bad.parse::<T>().expect_err(bad);
                assert_eq!(e.text, bad);
                assert!(serde_json::from_value::<T>(bad.into()).is_err());
            }
        }
    }

    #[test]
    fn every_word_round_trips_through_its_text() {
        round_trips(UserState::ALL);
        round_trips(DisposalState::ALL);
        round_trips(Cause::ALL);
        round_trips(ItemAction::ALL);
        round_trips(GateDecision::ALL);
        round_trips(GateReason::ALL);
        round_trips(EventType::ALL);
    }

    #[test]
    fn the_stored_texts_are_the_ones_the_migrations_name() {
        // Partial indexes and existing rows hold these exact texts.
        let texts = |all: &[UserState]| all.iter().map(|s| s.as_str()).collect::<Vec<_>>();
        assert_eq!(texts(&UserState::VISIBLE), ["active", "suspended"]);
        assert_eq!(
            DisposalState::OPEN.map(DisposalState::as_str),
            ["scheduled", "held"]
        );
        assert_eq!(UserState::DeletedPending.as_str(), "deleted_pending");
        assert_eq!(GateDecision::AllowJit.as_str(), "allow_jit");
    }

    #[test]
    fn visible_is_the_list() {
        for &s in UserState::ALL {
            assert_eq!(s.is_visible(), UserState::VISIBLE.contains(&s), "{s}");
        }
        assert_eq!(UserState::from_active(true), UserState::Active);
        assert_eq!(UserState::from_active(false), UserState::Suspended);
    }

    #[test]
    fn unknown_text_names_its_vocabulary() {
        let e = "gone".parse::<UserState>().expect_err("unknown");
        assert_eq!(e.to_string(), "unknown user state 'gone'");
    }

    #[test]
    fn active_moves_only_active_and_suspended_users() {
        use super::ActiveChange::*;
        for s in UserState::ALL {
            let (off, on) = (s.on_active(false), s.on_active(true));
            match s {
                UserState::Active => assert_eq!((off, on), (Suspend, Unchanged)),
                UserState::Suspended => assert_eq!((off, on), (Unchanged, Reactivate)),
                _ => assert_eq!((off, on), (Unchanged, Unchanged), "{s}"),
            }
        }
    }
}
