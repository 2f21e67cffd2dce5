//! SCIM filters and `sortBy` → SQL, evaluated in the database on both backends.
//!
//! Every attribute path is first resolved against the schema
//! (`scim::resolve`), and every literal typed and normalized
//! (`scim::filter_eval::typed_literal`); then the path is read from:
//! - an indexed column (`userName`, `externalId`, `emails.value`, members…),
//!   which is how the lookups IdPs make stay index-backed;
//! - otherwise the user's search document (`users.search`, JSON built by
//!   `scim::search_doc`: case-insensitive strings already folded), through
//!   `json_extract`/`json_each` on SQLite and `#>>`/`jsonb_array_elements` on
//!   PostgreSQL.
//!
//! The meaning is `scim::filter_eval`'s, which the differential property test
//! holds this translation to. Comparisons never yield SQL NULL (so `NOT` is
//! two-valued), substring operators use `substr`/`replace` rather than `LIKE`
//! (whose case rules differ between backends), and ordering comparisons use
//! code-point order on both.

use super::db::{Backend, Bind, Sql};
use crate::scim::error::ScimError;
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::scim::filter_eval::{Lit, typed_literal};
use crate::scim::resolve::{Owner, Resolved, resolve, resolve_in, resolve_value_path};
use crate::scim::schema::{GROUP_TYPE, Mutability, ResourceType, USER_TYPE, is_common_attr};

/// A column holding an attribute's comparable form (folded where the schema
/// says case-insensitive, fixed-width UTC for dateTimes).
struct Column {
    expr: &'static str,
    /// A real boolean column (JSON booleans are the text 'true'/'false').
    boolean: bool,
}

const fn col(expr: &'static str) -> Column {
    Column {
        expr,
        boolean: false,
    }
}

/// A multi-valued attribute with one row per element in a child table.
struct Child {
    from: &'static str,
    join: &'static str,
    /// The child's column holding the parent's id, and its tenant column: a
    /// positive test is `parent.id IN (SELECT key … WHERE tenant = ? AND …)`,
    /// which both planners drive from the child's index (SQLite never turns a
    /// correlated EXISTS into a join: it scanned every user per lookup).
    key: &'static str,
    tenant: &'static str,
    columns: &'static [(&'static str, Column)],
    /// Every element has a row. `user_emails` only holds elements with a
    /// `value`, so it answers only filters that require one.
    complete: bool,
}

pub struct Target {
    rt: &'static ResourceType,
    alias: &'static str,
    id: &'static str,
    /// Keyed by `Resolved::display()`.
    columns: &'static [(&'static str, Column)],
    children: &'static [(&'static str, Child)],
    /// The search-document column, when the resource has one.
    search: Option<&'static str>,
}

pub static USERS: Target = Target {
    rt: &USER_TYPE,
    alias: "u",
    id: "u.id",
    columns: &[
        ("id", col("u.id")),
        ("externalId", col("u.external_id")),
        ("userName", col("u.user_name_key")),
        ("displayName", col("u.display_name_key")),
        ("name.givenName", col("u.given_name_key")),
        ("name.familyName", col("u.family_name_key")),
        (
            "active",
            Column {
                expr: "u.active",
                boolean: true,
            },
        ),
        ("meta.created", col("u.created_at")),
        ("meta.lastModified", col("u.updated_at")),
        ("meta.resourceType", col("'User'")),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            col("u.manager_key"),
        ),
    ],
    children: &[
        (
            "emails",
            Child {
                from: "user_emails e",
                join: "e.user_id = u.id AND e.tenant_id = u.tenant_id",
                key: "e.user_id",
                tenant: "e.tenant_id",
                // Not `primary`: the table cannot tell `false` from absent.
                columns: &[("value", col("e.value_key")), ("type", col("e.kind"))],
                complete: false,
            },
        ),
        (
            "groups",
            Child {
                from: "group_members gm JOIN groups gg ON gg.id = gm.group_id",
                join: "gm.member_id = u.id AND gm.tenant_id = u.tenant_id",
                key: "gm.member_id",
                tenant: "gm.tenant_id",
                columns: &[
                    ("value", col("gm.group_id")),
                    ("display", col("gg.display_name_key")),
                    ("type", col("'direct'")),
                ],
                complete: true,
            },
        ),
    ],
    search: Some("u.search"),
};

pub static GROUPS: Target = Target {
    rt: &GROUP_TYPE,
    alias: "g",
    id: "g.id",
    columns: &[
        ("id", col("g.id")),
        ("externalId", col("g.external_id")),
        ("displayName", col("g.display_name_key")),
        ("meta.created", col("g.created_at")),
        ("meta.lastModified", col("g.updated_at")),
        ("meta.resourceType", col("'Group'")),
    ],
    children: &[(
        "members",
        Child {
            from: "group_members m",
            join: "m.group_id = g.id AND m.tenant_id = g.tenant_id",
            key: "m.group_id",
            tenant: "m.tenant_id",
            // member_type is 'User' or 'Group': ASCII, so lower() is the fold.
            columns: &[
                ("value", col("m.member_id")),
                ("type", col("lower(m.member_type)")),
            ],
            complete: true,
        },
    )],
    search: None,
};

/// Where a comparison reads its value.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Top,
    /// Inside `attr[…]` of a singular complex attribute.
    Single(Resolved),
    /// Inside `attr[…]` over child-table rows.
    Child(Resolved, &'a Child),
    /// Inside `attr[…]` over search-document elements (`j.value`).
    Json(Resolved),
}

struct Value {
    sql: String,
    boolean: bool,
}

struct Ctx<'a> {
    target: &'a Target,
    backend: Backend,
    tenant: &'a str,
}

/// Translates a filter into a boolean SQL expression over the target's alias,
/// for one tenant's resources.
pub fn translate(
    target: &Target,
    backend: Backend,
    tenant: &str,
    f: &Filter,
) -> Result<Sql, ScimError> {
    Ctx {
        target,
        backend,
        tenant,
    }
    .expr(f, Scope::Top)
}

/// Whether a filter can only match elements that have a `value`.
fn requires_value(f: &Filter) -> bool {
    let is_value =
        |p: &AttrPath| p.urn.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case("value");
    match f {
        Filter::Compare(p, op, v) => is_value(p) && *op != CompareOp::Ne && *v != CompValue::Null,
        Filter::Present(p) => is_value(p),
        Filter::And(a, b) => requires_value(a) || requires_value(b),
        Filter::Or(a, b) => requires_value(a) && requires_value(b),
        Filter::Not(_) | Filter::ValuePath(..) => false,
    }
}

/// The plain names a value filter's leaves use.
fn leaf_names(f: &Filter, out: &mut Vec<String>) {
    match f {
        Filter::Compare(p, ..) | Filter::Present(p) => out.push(p.name.clone()),
        Filter::And(a, b) | Filter::Or(a, b) => {
            leaf_names(a, out);
            leaf_names(b, out);
        }
        Filter::Not(a) | Filter::ValuePath(_, a) => leaf_names(a, out),
    }
}

fn find<'t, T>(list: &'t [(&'static str, T)], key: &str) -> Option<&'t T> {
    list.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

impl Ctx<'_> {
    fn pg(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// The parent has a child row satisfying `cond`.
    fn child_in(&self, child: &Child, cond: Sql) -> Sql {
        let mut s = Sql::default();
        s.push(&format!(
            "{} IN (SELECT {} FROM {} WHERE {} = ",
            self.target.id, child.key, child.from, child.tenant
        ))
        .bind_text(self.tenant)
        .push(" AND ")
        .append(cond)
        .push(")");
        s
    }

    /// JSON keys of an attribute in the search document.
    fn keys(r: &Resolved, with_sub: bool) -> Vec<&'static str> {
        let mut k = Vec::with_capacity(3);
        if let Owner::Extension(s) = r.owner {
            k.push(s.name);
        }
        k.push(r.attr.name);
        if with_sub && let Some(s) = r.sub {
            k.push(s.name);
        }
        k
    }

    /// The text at `keys` under a JSON value (`u.search`, or `j.value`).
    fn json_text(&self, base: &str, keys: &[&str]) -> String {
        if self.pg() {
            let base = if base.ends_with(".search") {
                format!("{base}::jsonb")
            } else {
                base.to_string()
            };
            format!("({base} #>> '{{{}}}')", keys.join(","))
        } else {
            let path: String = keys.iter().map(|k| format!(".\"{k}\"")).collect();
            format!("json_extract({base}, '${path}')")
        }
    }

    /// `FROM` items enumerating the elements of a multi-valued attribute as `j.value`.
    fn json_elements(&self, search: &str, keys: &[&str]) -> String {
        if self.pg() {
            format!(
                "jsonb_array_elements({search}::jsonb #> '{{{}}}') AS j(value)",
                keys.join(",")
            )
        } else {
            let path: String = keys.iter().map(|k| format!(".\"{k}\"")).collect();
            format!("json_each({search}, '${path}') j")
        }
    }

    fn expr(&self, f: &Filter, scope: Scope<'_>) -> Result<Sql, ScimError> {
        let mut sql = Sql::default();
        match f {
            Filter::And(a, b) | Filter::Or(a, b) => {
                let op = if matches!(f, Filter::And(..)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.push("(").append(self.expr(a, scope)?);
                sql.push(op).append(self.expr(b, scope)?);
                sql.push(")");
            }
            Filter::Not(a) => {
                sql.push("(NOT ").append(self.expr(a, scope)?);
                sql.push(")");
            }
            Filter::ValuePath(p, inner) => {
                if !matches!(scope, Scope::Top) {
                    return Err(ScimError::invalid_filter("value filters cannot be nested"));
                }
                sql.append(self.value_path(p, inner)?);
            }
            Filter::Present(p) => {
                sql.append(self.leaf(p, None, scope)?);
            }
            Filter::Compare(p, op, v) => {
                sql.append(self.leaf(p, Some((*op, v)), scope)?);
            }
        }
        Ok(sql)
    }

    fn value_path(&self, p: &AttrPath, inner: &Filter) -> Result<Sql, ScimError> {
        let r = resolve_value_path(self.target.rt, p)?;
        let mut sql = Sql::default();
        if !r.attr.multi {
            // One object: its sub-attributes, provided it is there at all.
            let present = self.present_node(&r)?;
            sql.push("(").append(present).push(" AND ");
            sql.append(self.expr(inner, Scope::Single(r))?).push(")");
            return Ok(sql);
        }
        if let Some(child) = find(self.target.children, r.attr.name) {
            let mut names = vec![];
            leaf_names(inner, &mut names);
            let covered = names.iter().all(|n| find(child.columns, n).is_some());
            if covered && (child.complete || requires_value(inner)) {
                return Ok(self.child_in(child, self.expr(inner, Scope::Child(r, child))?));
            }
        }
        let search = self.search_of(&r)?;
        sql.push(&format!(
            "EXISTS (SELECT 1 FROM {} WHERE ",
            self.json_elements(search, &Self::keys(&r, false))
        ));
        sql.append(self.expr(inner, Scope::Json(r))?).push(")");
        Ok(sql)
    }

    /// The search-document column holding `r`. Only stored, client-written
    /// attributes are in the document: common attributes (`id`, `meta`) and
    /// read-only ones (`groups`, `manager.displayName`) are not.
    fn search_of(&self, r: &Resolved) -> Result<&'static str, ScimError> {
        let stored = !is_common_attr(r.attr.name)
            && r.attr.mutability != Mutability::ReadOnly
            && r.sub.is_none_or(|s| s.mutability != Mutability::ReadOnly);
        match self.target.search {
            Some(s) if stored => Ok(s),
            _ => Err(ScimError::invalid_filter(format!(
                "filtering on '{}' is not supported for {} resources",
                r.display(),
                self.target.rt.name
            ))),
        }
    }

    /// `attr pr` for a whole (complex or multi-valued) attribute.
    fn present_node(&self, r: &Resolved) -> Result<Sql, ScimError> {
        let mut sql = Sql::default();
        if let Some(child) = find(self.target.children, r.attr.name).filter(|c| c.complete) {
            sql.push(&format!(
                "EXISTS (SELECT 1 FROM {} WHERE {})",
                child.from, child.join
            ));
            return Ok(sql);
        }
        let search = self.search_of(r)?;
        sql.push(&format!(
            "({} IS NOT NULL)",
            self.json_text(search, &Self::keys(r, false))
        ));
        Ok(sql)
    }

    fn leaf(
        &self,
        p: &AttrPath,
        cmp: Option<(CompareOp, &CompValue)>,
        scope: Scope<'_>,
    ) -> Result<Sql, ScimError> {
        let r = match scope {
            Scope::Top => {
                let r = resolve(self.target.rt, p)?;
                if cmp.is_some() {
                    r.with_default_value()?
                } else {
                    r
                }
            }
            Scope::Single(parent) | Scope::Child(parent, _) | Scope::Json(parent) => {
                resolve_in(parent, p)?
            }
        };
        let cmp = cmp
            .map(|(op, v)| typed_literal(&r, op, v).map(|lit| (op, lit)))
            .transpose()?;
        match scope {
            Scope::Child(_, child) => {
                let name = r.sub.map(|s| s.name).unwrap_or_default();
                let c = find(child.columns, name).ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "filtering on '{}' is not supported",
                        r.display()
                    ))
                })?;
                Ok(compare(self.backend, &column_value(c), cmp.as_ref()))
            }
            Scope::Json(_) => {
                self.search_of(&r)?;
                let name = r.sub.map(|s| s.name).unwrap_or_default();
                let v = Value {
                    sql: self.json_text("j.value", &[name]),
                    boolean: false,
                };
                Ok(compare(self.backend, &v, cmp.as_ref()))
            }
            Scope::Top | Scope::Single(_) => self.top_leaf(&r, cmp.as_ref()),
        }
    }

    /// A comparison (or `pr`) on a resolved top-level path.
    fn top_leaf(&self, r: &Resolved, cmp: Option<&(CompareOp, Lit)>) -> Result<Sql, ScimError> {
        if let Some(c) = find(self.target.columns, &r.display()) {
            return Ok(compare(self.backend, &column_value(c), cmp));
        }
        if r.attr.multi {
            let Some(sub) = r.sub else {
                // `emails pr`: the attribute has an element.
                return self.present_node(r);
            };
            // Absent (no elements) compares as a missing value: true only for
            // `ne` and `eq null`.
            let missing_matches = matches!(
                cmp,
                Some((CompareOp::Ne, l)) if *l != Lit::Null
            ) || matches!(cmp, Some((CompareOp::Eq, Lit::Null)));
            let mut sql = Sql::default();
            let child = find(self.target.children, r.attr.name).and_then(|child| {
                let strict = sub.name == "value"
                    && match cmp {
                        None => true,
                        Some((op, lit)) => *op != CompareOp::Ne && *lit != Lit::Null,
                    };
                let c = find(child.columns, sub.name)?;
                (child.complete || strict).then_some((child, c))
            });
            let (exists, elements) = match child {
                Some((child, c)) => (
                    self.child_in(child, compare(self.backend, &column_value(c), cmp)),
                    format!("SELECT 1 FROM {} WHERE {}", child.from, child.join),
                ),
                None => {
                    let search = self.search_of(r)?;
                    let from = self.json_elements(search, &Self::keys(r, false));
                    let v = Value {
                        sql: self.json_text("j.value", &[sub.name]),
                        boolean: false,
                    };
                    let mut s = Sql::default();
                    s.push(&format!("EXISTS (SELECT 1 FROM {from} WHERE "))
                        .append(compare(self.backend, &v, cmp))
                        .push(")");
                    (s, format!("SELECT 1 FROM {from}"))
                }
            };
            if missing_matches {
                sql.push("(").append(exists);
                sql.push(&format!(" OR NOT EXISTS ({elements}))"));
            } else {
                sql.append(exists);
            }
            return Ok(sql);
        }
        if r.attr.is_complex() && r.sub.is_none() {
            return self.present_node(r);
        }
        let search = self.search_of(r)?;
        let v = Value {
            sql: self.json_text(search, &Self::keys(r, true)),
            boolean: false,
        };
        Ok(compare(self.backend, &v, cmp))
    }

    /// The expression `sortBy` orders by: the attribute's comparable form; for a
    /// multi-valued attribute, its primary value, else its first (RFC 7644 §3.4.2.3).
    fn sort_expr(&self, p: &AttrPath) -> Result<String, ScimError> {
        let as_value = |e: ScimError| ScimError::invalid_value(format!("sortBy: {}", e.detail));
        let mut r = resolve(self.target.rt, p).map_err(as_value)?;
        if r.attr.is_complex() && r.sub.is_none() {
            r.sub = r.attr.sub_attr("value");
        }
        if let Some(c) = find(self.target.columns, &r.display()) {
            // Sort keys are text (cursors carry them as text): booleans sort
            // as 'false' < 'true', like the search document's.
            return Ok(if c.boolean {
                format!("(CASE WHEN {} THEN 'true' ELSE 'false' END)", c.expr)
            } else {
                c.expr.to_string()
            });
        }
        let no_sort = || {
            ScimError::invalid_value(format!(
                "sorting by '{}' is not supported for {} resources",
                r.display(),
                self.target.rt.name
            ))
        };
        let search = self.search_of(&r).map_err(|_| no_sort())?;
        if r.attr.multi {
            let sub = r.sub.map(|s| s.name).ok_or_else(no_sort)?;
            if r.attr.sub_attr("primary").is_none() {
                return Err(no_sort());
            }
            let keys = Self::keys(&r, false);
            let value = self.json_text("j.value", &[sub]);
            let primary = self.json_text("j.value", &["primary"]);
            return Ok(if self.pg() {
                format!(
                    "(SELECT {value} FROM jsonb_array_elements({search}::jsonb #> '{{{}}}') WITH ORDINALITY AS j(value, n) ORDER BY CASE WHEN {primary} = 'true' THEN 0 ELSE 1 END, j.n LIMIT 1)",
                    keys.join(",")
                )
            } else {
                let path: String = keys.iter().map(|k| format!(".\"{k}\"")).collect();
                format!(
                    "(SELECT {value} FROM json_each({search}, '${path}') j ORDER BY CASE WHEN {primary} = 'true' THEN 0 ELSE 1 END, j.key LIMIT 1)"
                )
            });
        }
        if r.attr.is_complex() && r.sub.is_none() {
            return Err(no_sort());
        }
        Ok(self.json_text(search, &Self::keys(&r, true)))
    }
}

/// The inner filter of `members[…]` as a condition on `group_members m`
/// (PATCH `remove` with a filtered path touches only the matching rows).
pub fn members_condition(backend: Backend, tenant: &str, inner: &Filter) -> Result<Sql, ScimError> {
    let r = resolve_value_path(
        &GROUP_TYPE,
        &AttrPath {
            urn: None,
            name: "members".into(),
            sub: None,
        },
    )?;
    let child = find(GROUPS.children, "members")
        .ok_or_else(|| ScimError::invalid_filter("members cannot be filtered"))?;
    Ctx {
        target: &GROUPS,
        backend,
        tenant,
    }
    .expr(inner, Scope::Child(r, child))
}

/// The SQL expression to order `target` by for `sortBy`.
pub fn sort_expr(target: &Target, backend: Backend, p: &AttrPath) -> Result<String, ScimError> {
    Ctx {
        target,
        backend,
        tenant: "",
    }
    .sort_expr(p)
}

impl Target {
    pub fn alias(&self) -> &'static str {
        self.alias
    }
}

fn column_value(c: &Column) -> Value {
    Value {
        sql: c.expr.to_string(),
        boolean: c.boolean,
    }
}

/// One comparison; `None` is `pr`. Never yields SQL NULL, and keeps the
/// column bare (`c IS NOT NULL AND c = ?`) so an index can serve it.
fn compare(backend: Backend, v: &Value, cmp: Option<&(CompareOp, Lit)>) -> Sql {
    let c = &v.sql;
    let mut sql = Sql::default();
    let Some((op, lit)) = cmp else {
        sql.push(&format!("({c} IS NOT NULL)"));
        return sql;
    };
    let present = format!("({c} IS NOT NULL AND ");
    let text = match lit {
        Lit::Null => {
            // typed_literal only lets eq/ne through with null.
            let test = if *op == CompareOp::Eq {
                "IS NULL"
            } else {
                "IS NOT NULL"
            };
            sql.push(&format!("({c} {test})"));
            return sql;
        }
        Lit::Bool(b) => {
            let bind = if v.boolean {
                Bind::Bool(*b)
            } else {
                Bind::Text(b.to_string())
            };
            if *op == CompareOp::Eq {
                sql.push(&format!("{present}{c} = ")).bind(bind).push(")");
            } else {
                sql.push(&format!("({c} IS NULL OR {c} <> "))
                    .bind(bind)
                    .push(")");
            }
            return sql;
        }
        Lit::Text(t) => t.clone(),
    };
    let collate = if backend == Backend::Postgres {
        " COLLATE \"C\""
    } else {
        ""
    };
    match op {
        CompareOp::Eq => sql
            .push(&format!("{present}{c} = "))
            .bind_text(text)
            .push(")"),
        CompareOp::Ne => sql
            .push(&format!("({c} IS NULL OR {c} <> "))
            .bind_text(text)
            .push(")"),
        CompareOp::Co if text.is_empty() => sql.push(&format!("({c} IS NOT NULL)")),
        CompareOp::Co => sql
            .push(&format!("{present}replace({c}, "))
            .bind_text(text)
            .push(&format!(", '') <> {c})")),
        CompareOp::Sw => sql
            .push(&format!("{present}substr({c}, 1, length("))
            .bind_text(text.clone())
            .push(")) = ")
            .bind_text(text)
            .push(")"),
        CompareOp::Ew => sql
            .push(&format!("{present}length({c}) >= length("))
            .bind_text(text.clone())
            .push(&format!(") AND substr({c}, length({c}) - length("))
            .bind_text(text.clone())
            .push(") + 1) = ")
            .bind_text(text)
            .push(")"),
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
            let sym = match op {
                CompareOp::Gt => ">",
                CompareOp::Ge => ">=",
                CompareOp::Lt => "<",
                _ => "<=",
            };
            sql.push(&format!("{present}{c}{collate} {sym} "))
                .bind_text(text)
                .push(")")
        }
    };
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse;

    fn t(target: &Target, f: &str) -> Result<Sql, ScimError> {
        translate(target, Backend::Sqlite, "t1", &parse(f)?)
    }

    #[test]
    fn user_name_is_folded_and_bound() {
        let s = t(&USERS, r#"userName eq "Alice@Contoso.Example""#);
        assert!(s.is_ok_and(
            |s| s.text == "(u.user_name_key IS NOT NULL AND u.user_name_key = ?)"
                && s.binds == vec![Bind::Text("alice@contoso.example".into())]
        ));
    }

    #[test]
    fn indexed_value_paths_use_child_tables() {
        let s = t(&USERS, r#"emails[type eq "work"].value eq "A@B.c""#);
        assert!(s.is_ok_and(|s| {
            s.text.starts_with(
                "u.id IN (SELECT e.user_id FROM user_emails e WHERE e.tenant_id = ? AND ",
            ) && s.binds.first() == Some(&Bind::Text("t1".into()))
                && s.binds.contains(&Bind::Text("a@b.c".into()))
        }));
        let s = t(&GROUPS, r#"id eq "g1" and members[value eq "u1"]"#);
        assert!(s.is_ok_and(|s| {
            s.text
                .contains("g.id IN (SELECT m.group_id FROM group_members m")
                && s.binds.len() == 3
        }));
        // Without a required value, emails are read from the search document
        // (the child table only has elements with a value).
        let s = t(&USERS, r#"emails[type eq "work"]"#);
        assert!(s.is_ok_and(|s| s.text.contains("json_each(u.search")));
    }

    #[test]
    fn other_attributes_read_the_search_document() {
        let s = t(
            &USERS,
            r#"title eq "Boss" and phoneNumbers[type eq "work" and value co "555"]"#,
        );
        assert!(
            s.is_ok_and(|s| s.text.contains("json_extract(u.search, '$.\"title\"')")
                && s.text.contains("json_each(u.search, '$.\"phoneNumbers\"')")
                && s.binds[0] == Bind::Text("boss".into()))
        );
        let pg = translate(
            &USERS,
            Backend::Postgres,
            "t1",
            &parse(
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#,
            )
            .unwrap_or(Filter::Present(AttrPath {
                urn: None,
                name: "id".into(),
                sub: None,
            })),
        );
        assert!(pg.is_ok_and(|s| {
            s.text
                .contains("u.search::jsonb #>> '{EnterpriseUser,department}'")
        }));
    }

    #[test]
    fn unsupported_or_ill_typed_filters_are_invalid_filter() {
        assert!(t(&USERS, r#"active eq "True""#).is_ok_and(|s| s.binds == vec![Bind::Bool(true)]));
        for f in [
            "active eq \"yes\"",
            "userName eq true",
            r#"meta.created gt "yesterday""#,
            r#"urn:x:y:title eq "a""#,
            r#"emails[type eq "work" and nick eq "x"]"#,
            "active gt true",
            r#"members.$ref eq "x""#,
            r#"meta.version eq "x""#,
            r#"groups.$ref eq "x""#,
            r#"manager.displayName eq "x""#,
        ] {
            match t(&USERS, f) {
                Err(e) => assert_eq!(
                    e.scim_type,
                    Some(crate::scim::error::ScimType::InvalidFilter),
                    "{f}"
                ),
                Ok(s) => panic!("{f} translated to {}", s.text),
            }
        }
        assert!(t(&GROUPS, r#"members.display eq "x""#).is_err());
    }

    #[test]
    fn sort_expressions() {
        let e = |s: &str| {
            sort_expr(
                &USERS,
                Backend::Sqlite,
                &AttrPath::parse(s).unwrap_or(AttrPath {
                    urn: None,
                    name: "x".into(),
                    sub: None,
                }),
            )
        };
        assert!(e("userName").is_ok_and(|x| x == "u.user_name_key"));
        assert!(e("emails").is_ok_and(|x| x.contains("ORDER BY CASE WHEN")));
        assert!(e("title").is_ok_and(|x| x.contains("json_extract")));
        assert!(e("name").is_err());
        assert!(e("groups").is_err());
    }
}
