//! Hand-built SQL (the statements whose shape depends on the request: filters,
//! pages, the gate) and how it runs: as a prepared statement that diesel keeps
//! per connection, keyed by its text, so a repeated shape is parsed and planned
//! once per connection instead of once per request.
//!
//! `diesel::sql_query` never caches (it cannot know how many shapes a caller
//! makes). Here the number of cached shapes is bounded process-wide
//! (`SHAPE_BUDGET`): the first shapes seen are cached, later new ones run as
//! one-off statements, so no client can grow every connection's cache without
//! limit by sending ever-different filters.

use super::db::AnyConnection;
use super::error::StoreError;
use diesel::backend::Backend as DieselBackend;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Nullable, Text, Untyped};
use diesel::sqlite::Sqlite;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{LazyLock, Mutex};

/// Distinct statement texts that may be cached, per process. Each connection
/// caches at most this many hand-built statements (a prepared SQLite statement
/// is a few KiB).
const SHAPE_BUDGET: usize = 256;

/// A value bound into hand-built SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    /// Text or SQL NULL.
    OptText(Option<String>),
    Bool(bool),
    BigInt(i64),
}

/// SQL text with `?` placeholders and their values. Values are always bound,
/// never spliced; the text holds no other `?` (diesel writes `$n` for
/// PostgreSQL in their place).
#[derive(Debug, Default, Clone)]
pub struct Sql {
    pub(in crate::store) text: String,
    pub(in crate::store) binds: Vec<Bind>,
}

impl Sql {
    /// The text, `?` for each value (for EXPLAIN in tests and benchmarks).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The values, in placeholder order.
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    pub(in crate::store) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    pub(in crate::store) fn bind(&mut self, b: Bind) -> &mut Self {
        self.text.push('?');
        self.binds.push(b);
        self
    }
    pub(in crate::store) fn bind_text(&mut self, s: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(s.into()))
    }
    /// `(?, ?, …)` holding `values`, padded with the last value to the next
    /// power of two: `IN` lists of any length then make a handful of cached
    /// shapes instead of one per length. `values` must not be empty.
    pub(in crate::store) fn bind_list<S: AsRef<str>>(&mut self, values: &[S]) -> &mut Self {
        let n = values.len().max(1).next_power_of_two();
        self.push("(");
        for i in 0..n {
            if i > 0 {
                self.push(", ");
            }
            let v = values.get(i).or(values.last()).map_or("", |v| v.as_ref());
            self.bind_text(v);
        }
        self.push(")")
    }
    pub(in crate::store) fn append(&mut self, other: Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.binds.extend(other.binds);
        self
    }
}

struct ShapeBudget {
    seen: Mutex<HashSet<u64>>,
    hasher: std::collections::hash_map::RandomState,
}

static SHAPES: LazyLock<ShapeBudget> = LazyLock::new(|| ShapeBudget {
    seen: Mutex::new(HashSet::new()),
    hasher: std::collections::hash_map::RandomState::new(),
});

/// Whether statements with this text may be cached: yes once admitted, and a
/// new text is admitted while the budget lasts.
fn may_cache(text: &str) -> bool {
    let key = SHAPES.hasher.hash_one(text);
    let mut seen = SHAPES.seen.lock().unwrap_or_else(|p| p.into_inner());
    if seen.contains(&key) {
        return true;
    }
    if seen.len() < SHAPE_BUDGET {
        seen.insert(key);
        return true;
    }
    false
}

/// The diesel query for one `Sql`: text pieces between the placeholders, with
/// each bind pushed where its `?` was.
struct Statement<'a> {
    pieces: Vec<&'a str>,
    binds: &'a [Bind],
    cache: bool,
}

impl<'a> Statement<'a> {
    fn new(sql: &'a Sql) -> Result<Self, StoreError> {
        let pieces: Vec<&str> = sql.text.split('?').collect();
        if pieces.len() != sql.binds.len() + 1 {
            return Err(StoreError::Db(diesel::result::Error::QueryBuilderError(
                format!(
                    "hand-built SQL has {} placeholders for {} values",
                    pieces.len() - 1,
                    sql.binds.len()
                )
                .into(),
            )));
        }
        Ok(Statement {
            pieces,
            binds: &sql.binds,
            cache: may_cache(&sql.text),
        })
    }
}

impl<DB> QueryFragment<DB> for Statement<'_>
where
    DB: DieselBackend + HasSqlType<Text> + HasSqlType<Bool> + HasSqlType<BigInt>,
    String: ToSql<Text, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    bool: ToSql<Bool, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        let mut binds = self.binds.iter();
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                match binds.next() {
                    Some(Bind::Text(s)) => out.push_bind_param::<Text, _>(s)?,
                    Some(Bind::OptText(s)) => out.push_bind_param::<Nullable<Text>, _>(s)?,
                    Some(Bind::Bool(b)) => out.push_bind_param::<Bool, _>(b)?,
                    Some(Bind::BigInt(n)) => out.push_bind_param::<BigInt, _>(n)?,
                    // `new` checked the counts.
                    None => {}
                }
            }
            out.push_sql(piece);
        }
        Ok(())
    }
}

// No static id: diesel then keys its statement cache by the SQL text and the
// bind types.
impl QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Statement<'_> {}

/// A fixed SQL condition without values, for DSL queries: `users.state IN
/// ('active', 'suspended')`. Unlike `diesel::dsl::sql`, which marks every
/// statement using it as uncacheable, it keeps the statement cached. A literal
/// list, unlike `eq_any`, also lets a partial index whose predicate is that
/// list serve the query.
///
/// The text lives in the type (`L::SQL`), so a statement using it has a
/// static query id: diesel finds it in the cache by type, without building
/// its SQL text on every call (a text key did that: 5% of a create's CPU).
#[derive(Debug, Clone, Copy, Default)]
pub struct Condition<L>(std::marker::PhantomData<L>);

/// The SQL of a [`Condition`]: one type per condition.
pub trait LiteralCondition: Copy + Default + Send + Sync + 'static {
    const SQL: &'static str;
}

impl<L: LiteralCondition> Condition<L> {
    pub const fn new() -> Self {
        Condition(std::marker::PhantomData)
    }
}

impl<L> diesel::Expression for Condition<L> {
    type SqlType = Bool;
}

impl<L: LiteralCondition, DB: DieselBackend> QueryFragment<DB> for Condition<L> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(L::SQL);
        Ok(())
    }
}

impl<L: LiteralCondition> QueryId for Condition<L> {
    type QueryId = L;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<L, QS> diesel::AppearsOnTable<QS> for Condition<L> {}
impl<L, QS> diesel::SelectableExpression<QS> for Condition<L> {}
impl<L, GB> diesel::expression::ValidGrouping<GB> for Condition<L> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

/// Loads rows of a hand-built query on either backend.
pub(in crate::store) fn load_sql<R>(
    conn: &mut AnyConnection,
    sql: &Sql,
) -> Result<Vec<R>, StoreError>
where
    R: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    let q = Statement::new(sql)?;
    Ok(match conn {
        AnyConnection::Sqlite(c) => q.load::<R>(c)?,
        AnyConnection::Postgresql(c) => q.load::<R>(c)?,
    })
}

/// Executes a hand-built statement on either backend; returns affected rows.
pub(in crate::store) fn execute_sql(
    conn: &mut AnyConnection,
    sql: &Sql,
) -> Result<usize, StoreError> {
    let q = Statement::new(sql)?;
    Ok(match conn {
        AnyConnection::Sqlite(c) => q.execute(c)?,
        AnyConnection::Postgresql(c) => q.execute(c)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_must_match_the_values() {
        let mut s = Sql::default();
        s.push("SELECT 1 WHERE 1 = ").bind(Bind::BigInt(1));
        assert!(Statement::new(&s).is_ok());
        s.binds.push(Bind::BigInt(2));
        assert!(Statement::new(&s).is_err());
    }

    #[test]
    fn lists_are_padded_to_a_power_of_two() {
        let mut s = Sql::default();
        s.push("x IN ").bind_list(&["a", "b", "c"]);
        assert_eq!(s.text, "x IN (?, ?, ?, ?)");
        let texts: Vec<&str> = s
            .binds
            .iter()
            .map(|b| match b {
                Bind::Text(t) => t.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(texts, ["a", "b", "c", "c"]);
        let mut one = Sql::default();
        one.bind_list(&["a"]);
        assert_eq!(one.text, "(?)");
    }

    #[test]
    fn the_cached_shapes_are_bounded() {
        // Texts unique to this test, so other tests' shapes do not matter.
        let mut cached = 0;
        for i in 0..SHAPE_BUDGET + 10 {
            if may_cache(&format!("SELECT {i} /* shape budget test */")) {
                cached += 1;
            }
        }
        assert!(cached <= SHAPE_BUDGET, "{cached} shapes cached");
        assert!(
            !may_cache("SELECT 'one more' /* shape budget test */"),
            "a new shape was admitted past the budget"
        );
    }
}
