//! The domain words in TEXT columns: diesel reads and writes them by their
//! text form (`crate::domain`), and the state predicates are rendered once,
//! as literal SQL, from the domain's lists.

use super::sql::{Condition, LiteralCondition};
use crate::domain::{Cause, DisposalState, ItemAction, UserState};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::expression::AsExpression;
use diesel::sql_types::{SingleValue, Text};

/// A TEXT column holding a domain word. Reading text no word names is a
/// deserialisation error (surfaced as a `StoreError`), never a default.
macro_rules! text_column {
    ($($t:ty),+) => {$(
        impl<DB: Backend> FromSql<Text, DB> for $t
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let text = <String as FromSql<Text, DB>>::from_sql(bytes)?;
                text.parse::<$t>().map_err(|e| {
                    tracing::error!(error = %e, "a stored value is not a known word");
                    e.into()
                })
            }
        }

        impl<DB: Backend, ST: SingleValue> Queryable<ST, DB> for $t
        where
            $t: FromSql<ST, DB>,
        {
            type Row = Self;
            fn build(row: Self) -> deserialize::Result<Self> {
                Ok(row)
            }
        }

        impl AsExpression<Text> for $t {
            type Expression = <&'static str as AsExpression<Text>>::Expression;
            fn as_expression(self) -> Self::Expression {
                AsExpression::<Text>::as_expression(self.as_str())
            }
        }

        impl AsExpression<Text> for &$t {
            type Expression = <&'static str as AsExpression<Text>>::Expression;
            fn as_expression(self) -> Self::Expression {
                AsExpression::<Text>::as_expression(self.as_str())
            }
        }
    )+};
}

text_column!(UserState, DisposalState, Cause, ItemAction);

/// `column IN ('a', 'b')` for `words`, built at compile time: a literal list
/// (not bound values) lets a partial index whose predicate is that list serve
/// the query and keeps one cached statement.
macro_rules! in_list {
    ($column:literal, $words:expr) => {{
        const WORDS: &[&str] = &$words;
        const LEN: usize = in_list_len($column, WORDS);
        const BYTES: [u8; LEN] = in_list_bytes($column, WORDS);
        match std::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("the words are not UTF-8"),
        }
    }};
}

const fn in_list_len(column: &str, words: &[&str]) -> usize {
    // `column IN (` + `'w'` per word + `, ` between + `)`
    let mut n = column.len() + " IN (".len() + 1;
    let mut i = 0;
    while i < words.len() {
        n += words[i].len() + 2;
        if i > 0 {
            n += 2;
        }
        i += 1;
    }
    n
}

const fn put(out: &mut [u8], mut at: usize, s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        out[at] = b[i];
        at += 1;
        i += 1;
    }
    at
}

const fn in_list_bytes<const N: usize>(column: &str, words: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = put(&mut out, 0, column);
    at = put(&mut out, at, " IN (");
    let mut i = 0;
    while i < words.len() {
        if i > 0 {
            at = put(&mut out, at, ", ");
        }
        at = put(&mut out, at, "'");
        at = put(&mut out, at, words[i]);
        at = put(&mut out, at, "'");
        i += 1;
    }
    put(&mut out, at, ")");
    out
}

const fn user_texts<const N: usize>(states: [UserState; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = states[i].as_str();
        i += 1;
    }
    out
}

const fn disposal_texts<const N: usize>(states: [DisposalState; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = states[i].as_str();
        i += 1;
    }
    out
}

/// The SCIM-visible states (`UserState::VISIBLE`), as literal SQL, per way
/// the store's queries name the column.
pub const VISIBLE_USERS: &str = in_list!("users.state", user_texts(UserState::VISIBLE));
/// [`VISIBLE_USERS`] for queries aliasing `users` as `u`.
pub const VISIBLE_U: &str = in_list!("u.state", user_texts(UserState::VISIBLE));
/// [`VISIBLE_USERS`] for single-table statements on `users`.
pub const VISIBLE: &str = in_list!("state", user_texts(UserState::VISIBLE));

/// The open disposal states (`DisposalState::OPEN`), as literal SQL.
pub const OPEN_DISPOSALS: &str = in_list!("disposals.state", disposal_texts(DisposalState::OPEN));

/// [`OPEN_DISPOSALS`] as a DSL condition, like `users::visible()`.
pub const fn open_disposals() -> Condition<OpenDisposals> {
    Condition::new()
}

#[derive(Debug, Clone, Copy, Default)]
pub struct OpenDisposals;

impl LiteralCondition for OpenDisposals {
    const SQL: &'static str = OPEN_DISPOSALS;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_predicates_are_the_literal_lists() {
        assert_eq!(VISIBLE_USERS, "users.state IN ('active', 'suspended')");
        assert_eq!(VISIBLE_U, "u.state IN ('active', 'suspended')");
        assert_eq!(VISIBLE, "state IN ('active', 'suspended')");
        assert_eq!(OPEN_DISPOSALS, "disposals.state IN ('scheduled', 'held')");
        assert_eq!(in_list!("x", ["a"]), "x IN ('a')");
    }

    /// A stored text no word names fails the read (an error the caller
    /// surfaces), where a default would misreport the row.
    #[test]
    fn an_unknown_stored_word_is_an_error_not_a_default() {
        use crate::store::reads::{Page, disposals};
        use crate::store::{Db, StoreError};
        use diesel::connection::SimpleConnection;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(
            &format!("sqlite://{}", dir.path().join("v.db").display()),
            2,
            true,
        )
        .expect("open");
        let t = db
            .write(|c| crate::store::tokens::ensure_tenant(c, "t", "2026-12-05T00:00:00Z"))
            .expect("tenant")
            .id;
        let insert = format!(
            "INSERT INTO disposals (id, tenant_id, user_id, state, cause, due_at, actor, created_at) VALUES \
             ('d1', '{t}', 'u1', 'scheduled', 'grace', 'x', 'a', '2026-12-05T00:00:01Z'), \
             ('d2', '{t}', 'u2', 'exploded', 'grace', 'x', 'a', '2026-12-05T00:00:02Z')"
        );
        db.write(|c| c.batch_execute(&insert).map_err(StoreError::from))
            .expect("insert");
        let page = Page {
            offset: 0,
            limit: 10,
        };
        let scheduled = db
            .read(|c| disposals::list(c, &t, Some(DisposalState::Scheduled), page))
            .expect("known words read");
        assert_eq!(scheduled.len(), 1);
        assert_eq!(scheduled[0].state, DisposalState::Scheduled);
        assert_eq!(scheduled[0].cause, Cause::Grace);
        let all = db.read(|c| disposals::list(c, &t, None, page));
        assert!(
            matches!(all, Err(StoreError::Db(_))),
            "an unknown state read as {all:?}"
        );
    }
}
