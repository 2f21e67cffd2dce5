//! SCIM filters → SQL `WHERE` fragments over the indexed columns, evaluated in the
//! database on both backends. Case-insensitive attributes compare their folded
//! `*_key` columns with a folded value; case-exact substring operators use
//! `substr`/`replace`, never `LIKE` (whose case rules differ between backends).

use super::db::{Backend, Bind, Sql};
use crate::scim::error::ScimError;
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::scim::fold::fold;
use crate::scim::schema::{ENTERPRISE_URN, GROUP_URN, USER_URN};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Text compared as stored.
    Exact,
    /// Text compared through a folded key column.
    Folded,
    Bool,
    /// RFC 3339 text, compared as instants.
    Time,
}

struct Column {
    expr: &'static str,
    kind: Kind,
}

/// A multi-valued attribute stored in a child table.
struct Child {
    table: &'static str,
    alias: &'static str,
    join: &'static str,
    /// Sub-attribute → column; the first entry is the default (`value`).
    columns: &'static [(&'static str, Column)],
}

pub struct Target {
    urn: &'static str,
    table_alias: &'static str,
    columns: &'static [(&'static str, Column)],
    children: &'static [(&'static str, Child)],
}

const USER_COLUMNS: &[(&str, Column)] = &[
    (
        "id",
        Column {
            expr: "u.id",
            kind: Kind::Exact,
        },
    ),
    (
        "userName",
        Column {
            expr: "u.user_name_key",
            kind: Kind::Folded,
        },
    ),
    (
        "externalId",
        Column {
            expr: "u.external_id",
            kind: Kind::Exact,
        },
    ),
    (
        "displayName",
        Column {
            expr: "u.display_name_key",
            kind: Kind::Folded,
        },
    ),
    (
        "active",
        Column {
            expr: "u.active",
            kind: Kind::Bool,
        },
    ),
    (
        "name.givenName",
        Column {
            expr: "u.given_name_key",
            kind: Kind::Folded,
        },
    ),
    (
        "name.familyName",
        Column {
            expr: "u.family_name_key",
            kind: Kind::Folded,
        },
    ),
    (
        "meta.created",
        Column {
            expr: "u.created_at",
            kind: Kind::Time,
        },
    ),
    (
        "meta.lastModified",
        Column {
            expr: "u.updated_at",
            kind: Kind::Time,
        },
    ),
    (
        "manager",
        Column {
            expr: "u.manager_id",
            kind: Kind::Exact,
        },
    ),
    (
        "manager.value",
        Column {
            expr: "u.manager_id",
            kind: Kind::Exact,
        },
    ),
];

const USER_CHILDREN: &[(&str, Child)] = &[(
    "emails",
    Child {
        table: "user_emails",
        alias: "e",
        join: "e.user_id = u.id",
        columns: &[
            (
                "value",
                Column {
                    expr: "e.value_key",
                    kind: Kind::Folded,
                },
            ),
            (
                "type",
                Column {
                    expr: "e.kind",
                    kind: Kind::Folded,
                },
            ),
            (
                "primary",
                Column {
                    expr: "e.is_primary",
                    kind: Kind::Bool,
                },
            ),
        ],
    },
)];

const GROUP_COLUMNS: &[(&str, Column)] = &[
    (
        "id",
        Column {
            expr: "g.id",
            kind: Kind::Exact,
        },
    ),
    (
        "displayName",
        Column {
            expr: "g.display_name_key",
            kind: Kind::Folded,
        },
    ),
    (
        "externalId",
        Column {
            expr: "g.external_id",
            kind: Kind::Exact,
        },
    ),
    (
        "meta.created",
        Column {
            expr: "g.created_at",
            kind: Kind::Time,
        },
    ),
    (
        "meta.lastModified",
        Column {
            expr: "g.updated_at",
            kind: Kind::Time,
        },
    ),
];

const GROUP_CHILDREN: &[(&str, Child)] = &[(
    "members",
    Child {
        table: "group_members",
        alias: "m",
        join: "m.group_id = g.id",
        columns: &[
            (
                "value",
                Column {
                    expr: "m.member_id",
                    kind: Kind::Exact,
                },
            ),
            (
                "type",
                Column {
                    expr: "m.member_type",
                    kind: Kind::Exact,
                },
            ),
        ],
    },
)];

pub static USERS: Target = Target {
    urn: USER_URN,
    table_alias: "u",
    columns: USER_COLUMNS,
    children: USER_CHILDREN,
};
pub static GROUPS: Target = Target {
    urn: GROUP_URN,
    table_alias: "g",
    columns: GROUP_COLUMNS,
    children: GROUP_CHILDREN,
};

struct Ctx<'a> {
    target: &'a Target,
    backend: Backend,
}

/// Translates a filter into a boolean SQL expression over `target`'s alias.
pub fn translate(target: &Target, backend: Backend, f: &Filter) -> Result<Sql, ScimError> {
    let ctx = Ctx { target, backend };
    let _ = ctx.target.table_alias;
    ctx.expr(f, None)
}

fn path_name(p: &AttrPath) -> String {
    match &p.sub {
        Some(s) => format!("{}.{s}", p.name),
        None => p.name.clone(),
    }
}

impl Ctx<'_> {
    fn expr(&self, f: &Filter, child: Option<&Child>) -> Result<Sql, ScimError> {
        let mut sql = Sql::default();
        match f {
            Filter::And(a, b) | Filter::Or(a, b) => {
                let op = if matches!(f, Filter::And(..)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.push("(").append(self.expr(a, child)?);
                sql.push(op).append(self.expr(b, child)?);
                sql.push(")");
            }
            Filter::Not(a) => {
                sql.push("(NOT ").append(self.expr(a, child)?);
                sql.push(")");
            }
            Filter::ValuePath(attr, inner) => {
                if child.is_some() {
                    return Err(ScimError::invalid_filter("value filters cannot be nested"));
                }
                let c = self.child(attr)?;
                sql.push(&format!(
                    "EXISTS (SELECT 1 FROM {} {} WHERE {} AND (",
                    c.table, c.alias, c.join
                ));
                sql.append(self.expr(inner, Some(c))?);
                sql.push("))");
            }
            Filter::Present(p) => {
                sql.append(self.leaf(p, None, child)?);
            }
            Filter::Compare(p, op, v) => {
                sql.append(self.leaf(p, Some((*op, v)), child)?);
            }
        }
        Ok(sql)
    }

    fn check_urn(&self, p: &AttrPath) -> Result<(), ScimError> {
        match p.urn.as_deref() {
            None => Ok(()),
            Some(u) if u.eq_ignore_ascii_case(self.target.urn) => Ok(()),
            Some(u) if u.eq_ignore_ascii_case(ENTERPRISE_URN) && self.target.urn == USER_URN => {
                Ok(())
            }
            Some(u) => Err(ScimError::invalid_filter(format!(
                "unknown schema '{u}' in filter"
            ))),
        }
    }

    fn child(&self, attr: &AttrPath) -> Result<&'static Child, ScimError> {
        self.check_urn(attr)?;
        self.target
            .children
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&attr.name))
            .map(|(_, c)| c)
            .ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "'{}' is not a multi-valued attribute that can be filtered",
                    attr.name
                ))
            })
    }

    fn leaf(
        &self,
        p: &AttrPath,
        cmp: Option<(CompareOp, &CompValue)>,
        child: Option<&Child>,
    ) -> Result<Sql, ScimError> {
        self.check_urn(p)?;
        if let Some(c) = child {
            // Inside `attr[…]`: paths are sub-attributes of the element.
            let name = path_name(p);
            let col = c
                .columns
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, col)| col)
                .ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "filtering on sub-attribute '{name}' is not supported"
                    ))
                })?;
            return self.compare(col, &name, cmp);
        }
        let name = path_name(p);
        if let Some(col) = self
            .target
            .columns
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, c)| c)
        {
            return self.compare(col, &name, cmp);
        }
        // `emails` / `emails.value` / `members.value`: any element matches.
        if let Some((_, c)) = self
            .target
            .children
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&p.name))
        {
            let sub = p.sub.clone().unwrap_or_else(|| c.columns[0].0.to_string());
            let col = c
                .columns
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&sub))
                .map(|(_, col)| col)
                .ok_or_else(|| {
                    ScimError::invalid_filter(format!("filtering on '{name}' is not supported"))
                })?;
            let mut sql = Sql::default();
            sql.push(&format!(
                "EXISTS (SELECT 1 FROM {} {} WHERE {} AND ",
                c.table, c.alias, c.join
            ));
            sql.append(self.compare(col, &name, cmp)?);
            sql.push(")");
            return Ok(sql);
        }
        Err(ScimError::invalid_filter(format!(
            "filtering on '{name}' is not supported (filterable: {})",
            self.target
                .columns
                .iter()
                .map(|(n, _)| *n)
                .chain(self.target.children.iter().map(|(n, _)| *n))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    fn compare(
        &self,
        col: &Column,
        name: &str,
        cmp: Option<(CompareOp, &CompValue)>,
    ) -> Result<Sql, ScimError> {
        let mut sql = Sql::default();
        let c = col.expr;
        let Some((op, value)) = cmp else {
            sql.push(&format!("({c} IS NOT NULL)"));
            return Ok(sql);
        };
        if *value == CompValue::Null {
            return match op {
                CompareOp::Eq => Ok(sql.push(&format!("({c} IS NULL)")).clone()),
                CompareOp::Ne => Ok(sql.push(&format!("({c} IS NOT NULL)")).clone()),
                _ => Err(ScimError::invalid_filter(format!(
                    "'{}' cannot be used with null",
                    op.as_str()
                ))),
            };
        }
        let text = match (col.kind, value) {
            (Kind::Bool, CompValue::Bool(b)) => {
                return match op {
                    CompareOp::Eq => Ok(sql
                        .push(&format!("COALESCE({c} = "))
                        .bind(Bind::Bool(*b))
                        .push(", FALSE)")
                        .clone()),
                    CompareOp::Ne => Ok(sql
                        .push(&format!("COALESCE({c} <> "))
                        .bind(Bind::Bool(*b))
                        .push(", TRUE)")
                        .clone()),
                    _ => Err(ScimError::invalid_filter(format!(
                        "'{name}' is a boolean; only eq and ne apply"
                    ))),
                };
            }
            (Kind::Bool, CompValue::Str(s))
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                let b = s.eq_ignore_ascii_case("true");
                return match op {
                    CompareOp::Eq => Ok(sql
                        .push(&format!("COALESCE({c} = "))
                        .bind(Bind::Bool(b))
                        .push(", FALSE)")
                        .clone()),
                    CompareOp::Ne => Ok(sql
                        .push(&format!("COALESCE({c} <> "))
                        .bind(Bind::Bool(b))
                        .push(", TRUE)")
                        .clone()),
                    _ => Err(ScimError::invalid_filter(format!(
                        "'{name}' is a boolean; only eq and ne apply"
                    ))),
                };
            }
            (Kind::Bool, other) => {
                return Err(ScimError::invalid_filter(format!(
                    "'{name}' is a boolean; {other:?} is not a boolean value"
                )));
            }
            (_, CompValue::Bool(_)) => {
                return Err(ScimError::invalid_filter(format!(
                    "'{name}' is not a boolean attribute"
                )));
            }
            (Kind::Time, v) => {
                let raw = v.as_text().unwrap_or_default();
                crate::store::time::normalize(&raw).ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "'{name}' is a dateTime; '{raw}' is not an RFC 3339 instant"
                    ))
                })?
            }
            (Kind::Folded, v) => fold(&v.as_text().unwrap_or_default()),
            (Kind::Exact, v) => v.as_text().unwrap_or_default(),
        };
        let collate = if self.backend == Backend::Postgres {
            " COLLATE \"C\""
        } else {
            ""
        };
        match op {
            CompareOp::Eq => sql
                .push(&format!("COALESCE({c} = "))
                .bind_text(text)
                .push(", FALSE)"),
            CompareOp::Ne => sql
                .push(&format!("COALESCE({c} <> "))
                .bind_text(text)
                .push(", TRUE)"),
            CompareOp::Co if text.is_empty() => sql.push(&format!("({c} IS NOT NULL)")),
            CompareOp::Co => sql
                .push(&format!("COALESCE(replace({c}, "))
                .bind_text(text)
                .push(&format!(", '') <> {c}, FALSE)")),
            CompareOp::Sw => sql
                .push(&format!("COALESCE(substr({c}, 1, length("))
                .bind_text(text.clone())
                .push(")) = ")
                .bind_text(text)
                .push(", FALSE)"),
            CompareOp::Ew => sql
                .push(&format!("COALESCE(length({c}) >= length("))
                .bind_text(text.clone())
                .push(&format!(") AND substr({c}, length({c}) - length("))
                .bind_text(text.clone())
                .push(") + 1) = ")
                .bind_text(text)
                .push(", FALSE)"),
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                let sym = match op {
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Lt => "<",
                    _ => "<=",
                };
                sql.push(&format!("COALESCE({c}{collate} {sym} "))
                    .bind_text(text)
                    .push(", FALSE)")
            }
        };
        Ok(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse;

    fn t(target: &Target, f: &str) -> Result<Sql, ScimError> {
        translate(target, Backend::Sqlite, &parse(f)?)
    }

    #[test]
    fn user_name_is_folded_and_bound() {
        let s = t(&USERS, r#"userName eq "Alice@Contoso.Example""#);
        assert!(
            s.is_ok_and(|s| s.text == "COALESCE(u.user_name_key = ?, FALSE)"
                && s.binds == vec![Bind::Text("alice@contoso.example".into())])
        );
    }

    #[test]
    fn value_paths_become_exists_subqueries() {
        let s = t(&USERS, r#"emails[type eq "work"].value eq "A@B.c""#);
        assert!(s.is_ok_and(|s| {
            s.text
                .starts_with("EXISTS (SELECT 1 FROM user_emails e WHERE e.user_id = u.id")
                && s.binds.contains(&Bind::Text("a@b.c".into()))
        }));
        let s = t(&GROUPS, r#"id eq "g1" and members[value eq "u1"]"#);
        assert!(s.is_ok_and(|s| s.text.contains("FROM group_members m") && s.binds.len() == 2));
    }

    #[test]
    fn unsupported_or_ill_typed_filters_are_invalid_filter() {
        assert!(t(&USERS, r#"active eq "True""#).is_ok_and(|s| s.binds == vec![Bind::Bool(true)]));
        for f in [
            r#"title eq "x""#,
            "active eq \"yes\"",
            "userName eq true",
            r#"meta.created gt "yesterday""#,
            r#"urn:x:y:title eq "a""#,
            r#"emails[type eq "work" and nick eq "x"]"#,
            "active gt true",
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
    }

    #[test]
    fn enterprise_manager_and_urn_qualified_core_paths() {
        assert!(
            t(
                &USERS,
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m""#
            )
            .is_ok()
        );
        assert!(
            t(
                &USERS,
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "a""#
            )
            .is_ok()
        );
    }
}
