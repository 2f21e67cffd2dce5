//! A user's lifecycle state, stored as text in `users.state`.

/// A user's lifecycle state. `Active` and `Suspended` users are visible to
/// SCIM (`is_visible`); the others exist only for deprovisioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserState {
    Active,
    Suspended,
    /// Deleted by the IdP; its disposal is pending.
    DeletedPending,
    /// Disposed: the row keeps only what the receipt needs.
    Disposed,
    /// A placeholder written by a disposal for a user it references.
    Stub,
}

impl UserState {
    pub const ALL: [UserState; 5] = [
        UserState::Active,
        UserState::Suspended,
        UserState::DeletedPending,
        UserState::Disposed,
        UserState::Stub,
    ];

    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "active",
            UserState::Suspended => "suspended",
            UserState::DeletedPending => "deleted_pending",
            UserState::Disposed => "disposed",
            UserState::Stub => "stub",
        }
    }

    /// The state stored as `s`; `None` for any other text.
    pub fn parse(s: &str) -> Option<UserState> {
        UserState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Visible to SCIM: listed, found, and counted for uniqueness.
    pub const fn is_visible(self) -> bool {
        matches!(self, UserState::Active | UserState::Suspended)
    }
}

impl std::fmt::Display for UserState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::UserState;

    #[test]
    fn text_forms_round_trip_and_are_distinct() {
        for s in UserState::ALL {
            assert_eq!(UserState::parse(s.as_str()), Some(s));
        }
        assert_eq!(UserState::parse("Active"), None);
        assert_eq!(UserState::parse(""), None);
        let visible: Vec<_> = UserState::ALL
            .into_iter()
            .filter(|s| s.is_visible())
            .collect();
        assert_eq!(visible, [UserState::Active, UserState::Suspended]);
    }
}
