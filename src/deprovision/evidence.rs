//! Identity evidence: when two records are the same person (DESIGN "Identity
//! evidence", issue 14). Pure: every place that joins a new identity to an old
//! one — restore in place, a write onto a suspended user, a tombstone match on
//! create or rename, the gate — asks here.
//!
//! The rule: when both sides carry an `externalId`, it decides (equal → the same
//! person; different → different people, whatever else matches). When either
//! lacks one, the userName match decides — Okta often sends no externalId, and
//! its re-POST of a suspended person must still restore in place. An email (or
//! SSO subject) match alone never counts as agreement: addresses are recycled.

/// The one form in which externalIds are stored and compared (the store's
/// column, the gate, tombstone hashes): trimmed; blank means absent.
pub fn external_id(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|s| !s.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The same person.
    Agrees,
    /// A different person in a recycled name or address.
    Disagrees,
}

/// A live record and a new one. `user_name_matched`: the new userName folds to
/// the stored one.
pub fn live(stored: Option<&str>, new: Option<&str>, user_name_matched: bool) -> Evidence {
    match (stored.and_then(external_id), new.and_then(external_id)) {
        (Some(a), Some(b)) if a == b => Evidence::Agrees,
        (Some(_), Some(_)) => Evidence::Disagrees,
        _ if user_name_matched => Evidence::Agrees,
        _ => Evidence::Disagrees,
    }
}

/// A tombstone and a new record. `had_external_id`: the disposed person had one
/// (recorded even when its hash was skipped); `new_has_external_id`: the new
/// record carries one; `matched`: the identifier types whose hashes matched.
pub fn tombstone(had_external_id: bool, new_has_external_id: bool, matched: &[&str]) -> Evidence {
    let has = |t: &str| matched.contains(&t);
    if had_external_id && new_has_external_id {
        return if has("externalId") {
            Evidence::Agrees
        } else {
            Evidence::Disagrees
        };
    }
    if has("userName") || has("externalId") {
        Evidence::Agrees
    } else {
        Evidence::Disagrees
    }
}

/// A tombstone and an *existing* record taking one of its identifiers (a
/// rename, or a restore that brings new identifiers): that record already was
/// someone, so only an equal externalId says it is the disposed person. The
/// userName fallback is for a new record (Okta re-POSTing a person), not for
/// another account renamed onto a leaver's name.
pub fn tombstone_for_existing(matched: &[&str]) -> Evidence {
    if matched.contains(&"externalId") {
        Evidence::Agrees
    } else {
        Evidence::Disagrees
    }
}

#[cfg(test)]
mod tests {
    use super::Evidence::{Agrees, Disagrees};
    use super::*;

    #[test]
    fn external_ids_decide_when_both_sides_carry_one() {
        assert_eq!(live(Some("obj-1"), Some("obj-1"), true), Agrees);
        assert_eq!(live(Some("obj-1"), Some("obj-2"), true), Disagrees);
        // Equal externalIds are the same person even under another userName.
        assert_eq!(live(Some("obj-1"), Some("obj-1"), false), Agrees);
        // Compared in the one stored form: trimmed.
        assert_eq!(live(Some("obj-1"), Some("  obj-1 "), true), Agrees);
    }

    #[test]
    fn the_user_name_decides_when_either_side_lacks_one() {
        assert_eq!(live(None, Some("obj-2"), true), Agrees);
        assert_eq!(live(Some("obj-1"), None, true), Agrees);
        assert_eq!(live(None, None, true), Agrees);
        assert_eq!(live(Some("obj-1"), Some("   "), true), Agrees);
        assert_eq!(live(None, None, false), Disagrees);
    }

    #[test]
    fn tombstones_follow_the_same_rule() {
        assert_eq!(tombstone(true, true, &["userName", "externalId"]), Agrees);
        assert_eq!(tombstone(true, true, &["userName", "email"]), Disagrees);
        // The old externalId's hash was skipped, the new one differs: still different.
        assert_eq!(tombstone(true, true, &["userName"]), Disagrees);
        assert_eq!(tombstone(false, true, &["userName"]), Agrees);
        assert_eq!(tombstone(true, false, &["userName"]), Agrees);
        // An email alone never agrees.
        assert_eq!(tombstone(false, false, &["email"]), Disagrees);
        assert_eq!(tombstone(true, false, &["email", "sso"]), Disagrees);
    }

    #[test]
    fn an_existing_record_agrees_with_a_tombstone_only_by_external_id() {
        assert_eq!(tombstone_for_existing(&["userName"]), Disagrees);
        assert_eq!(tombstone_for_existing(&["userName", "email"]), Disagrees);
        assert_eq!(tombstone_for_existing(&["externalId"]), Agrees);
    }

    #[test]
    fn blank_external_ids_are_absent() {
        assert_eq!(external_id("  "), None);
        assert_eq!(external_id(" a "), Some("a"));
    }
}
