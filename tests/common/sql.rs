//! Raw SQL for tests, on diesel directly (the store's SQL builder is private
//! to it): text with `?` placeholders and the values bound to them, run on
//! either backend (PostgreSQL gets `$n` placeholders).

use custodian::store::db::Bind;
use custodian::store::{AnyConnection, StoreError};
use diesel::QueryableByName;
use diesel::RunQueryDsl;
use diesel::backend::Backend as DieselBackend;
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Nullable, Text};
use diesel::sqlite::Sqlite;

#[derive(Debug, Default, Clone)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            binds: Vec::new(),
        }
    }

    /// A statement the store builds (`users::list_sql`...), as text and values.
    pub fn of(s: &custodian::store::db::Sql) -> Sql {
        Sql {
            text: s.text().to_string(),
            binds: s.binds().to_vec(),
        }
    }

    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    pub fn bind_text(&mut self, s: impl Into<String>) -> &mut Self {
        self.text.push('?');
        self.binds.push(Bind::Text(s.into()));
        self
    }

    fn bound<DB>(&self, text: String) -> BoxedSqlQuery<'static, DB, SqlQuery>
    where
        DB: DieselBackend
            + HasSqlType<Text>
            + HasSqlType<Nullable<Text>>
            + HasSqlType<Bool>
            + HasSqlType<BigInt>,
        String: ToSql<Text, DB>,
        Option<String>: ToSql<Nullable<Text>, DB>,
        bool: ToSql<Bool, DB>,
        i64: ToSql<BigInt, DB>,
    {
        let mut q = diesel::sql_query(text).into_boxed::<DB>();
        for b in self.binds.iter().cloned() {
            q = match b {
                Bind::Text(s) => q.bind::<Text, _>(s),
                Bind::OptText(s) => q.bind::<Nullable<Text>, _>(s),
                Bind::Bool(v) => q.bind::<Bool, _>(v),
                Bind::BigInt(n) => q.bind::<BigInt, _>(n),
            };
        }
        q
    }

    /// PostgreSQL's placeholders are numbered.
    fn numbered(&self) -> String {
        let mut n = 0;
        let mut out = String::with_capacity(self.text.len());
        for ch in self.text.chars() {
            if ch == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(ch);
            }
        }
        out
    }
}

/// Executes a statement; returns affected rows.
pub fn execute_sql(c: &mut AnyConnection, sql: &Sql) -> Result<usize, StoreError> {
    Ok(match c {
        AnyConnection::Sqlite(c) => sql.bound::<Sqlite>(sql.text.clone()).execute(c)?,
        AnyConnection::Postgresql(c) => sql.bound::<Pg>(sql.numbered()).execute(c)?,
    })
}

/// Loads the rows of a query.
pub fn load_sql<R>(c: &mut AnyConnection, sql: &Sql) -> Result<Vec<R>, StoreError>
where
    R: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    Ok(match c {
        AnyConnection::Sqlite(c) => sql.bound::<Sqlite>(sql.text.clone()).load::<R>(c)?,
        AnyConnection::Postgresql(c) => sql.bound::<Pg>(sql.numbered()).load::<R>(c)?,
    })
}
