//! Resolves the attribute paths of filters and `sortBy` against a resource
//! type's schema (RFC 7644 §3.10): names are case-insensitive, may carry the
//! schema URN, and an unqualified name that only an extension defines resolves
//! to that extension. The SQL translator and the in-memory evaluator both start
//! here, so they agree on what a path means and on what is an error.

use super::error::ScimError;
use super::filter::AttrPath;
use super::schema::{Attr, AttrType, ENTERPRISE_URN, Mutability, ResourceType, Returned, Schema};

/// Where an attribute lives in the resource document.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Core,
    Extension(&'static Schema),
}

#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    pub owner: Owner,
    pub attr: &'static Attr,
    pub sub: Option<&'static Attr>,
}

impl Resolved {
    /// The attribute whose values are compared.
    pub fn leaf(&self) -> &'static Attr {
        self.sub.unwrap_or(self.attr)
    }

    /// `emails.value`, `urn:…:User:manager.value`: for messages and lookups.
    pub fn display(&self) -> String {
        let base = match self.owner {
            Owner::Core => self.attr.name.to_string(),
            Owner::Extension(s) => format!("{}:{}", s.id, self.attr.name),
        };
        match self.sub {
            Some(s) => format!("{base}.{}", s.name),
            None => base,
        }
    }

    /// A complex attribute named without a sub-attribute compares its `value`
    /// (`emails eq "x"`, Entra's `manager eq "id"`), per RFC 7644 §3.4.2.2.
    pub fn with_default_value(self) -> Result<Resolved, ScimError> {
        if self.sub.is_some() || !self.attr.is_complex() {
            return Ok(self);
        }
        match self.attr.sub_attr("value") {
            Some(v) => Ok(Resolved {
                sub: Some(v),
                ..self
            }),
            None => Err(ScimError::invalid_filter(format!(
                "'{}' is complex; name one of its sub-attributes ({})",
                self.attr.name,
                self.attr
                    .sub
                    .iter()
                    .map(|s| format!("{}.{}", self.attr.name, s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

const fn common(name: &'static str, ty: AttrType, d: &'static str) -> Attr {
    Attr {
        name,
        ty,
        multi: false,
        required: false,
        case_exact: true,
        mutability: Mutability::ReadOnly,
        returned: Returned::Default,
        unique_server: false,
        canonical: &[],
        reference_types: &[],
        sub: &[],
        description: d,
    }
}

static ID: Attr = common("id", AttrType::String, "The resource id.");
static EXTERNAL_ID: Attr = common("externalId", AttrType::String, "The client's id.");
static META_SUB: &[Attr] = &[
    common("resourceType", AttrType::String, "The resource type."),
    common("created", AttrType::DateTime, "When it was created."),
    common("lastModified", AttrType::DateTime, "When it last changed."),
    common("location", AttrType::Reference, "Its URI."),
    common("version", AttrType::String, "Its version (the ETag)."),
];
static META: Attr = Attr {
    sub: META_SUB,
    ..common("meta", AttrType::Complex, "Resource metadata.")
};

fn common_attr(name: &str) -> Option<&'static Attr> {
    [&ID, &EXTERNAL_ID, &META]
        .into_iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

fn find_in(rt: &ResourceType, owner: Owner, name: &str) -> Option<&'static Attr> {
    match owner {
        Owner::Core => rt.core.attr(name).or_else(|| common_attr(name)),
        Owner::Extension(s) => s.attr(name),
    }
}

/// Resolves a top-level path (`userName`, `name.givenName`, `urn:…:department`).
pub fn resolve(rt: &ResourceType, p: &AttrPath) -> Result<Resolved, ScimError> {
    let (owner, attr) = match p.urn.as_deref() {
        Some(u) if u.eq_ignore_ascii_case(rt.core.id) => {
            (Owner::Core, find_in(rt, Owner::Core, &p.name))
        }
        Some(u) => match rt.extension(u) {
            Some(ext) => (Owner::Extension(ext), ext.attr(&p.name)),
            None => {
                return Err(ScimError::invalid_filter(format!(
                    "unknown schema '{u}' for {} resources",
                    rt.name
                )));
            }
        },
        None => match find_in(rt, Owner::Core, &p.name) {
            Some(a) => (Owner::Core, Some(a)),
            // Unqualified extension names are accepted when unambiguous.
            None => rt
                .extensions
                .iter()
                .find_map(|e| e.attr(&p.name).map(|a| (Owner::Extension(e), Some(a))))
                .unwrap_or((Owner::Core, None)),
        },
    };
    let attr = attr.ok_or_else(|| {
        ScimError::invalid_filter(format!(
            "'{p}' is not an attribute of {} resources",
            rt.name
        ))
    })?;
    if attr.returned == Returned::Never {
        return Err(ScimError::invalid_filter(format!(
            "'{}' is never returned and cannot be filtered or sorted on",
            attr.name
        )));
    }
    let sub = match &p.sub {
        None => None,
        Some(s) if attr.is_complex() => Some(attr.sub_attr(s).ok_or_else(|| {
            ScimError::invalid_filter(format!(
                "'{}' has no sub-attribute '{s}' (it has {})",
                attr.name,
                attr.sub
                    .iter()
                    .map(|a| a.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?),
        Some(s) => {
            return Err(ScimError::invalid_filter(format!(
                "'{}' is not complex and has no sub-attribute '{s}'",
                attr.name
            )));
        }
    };
    Ok(Resolved { owner, attr, sub })
}

/// Resolves a path inside `attr[…]`: a sub-attribute of the element.
pub fn resolve_in(parent: Resolved, p: &AttrPath) -> Result<Resolved, ScimError> {
    if p.urn.is_some() || p.sub.is_some() {
        return Err(ScimError::invalid_filter(format!(
            "inside '{}[…]', '{p}' must be a plain sub-attribute name",
            parent.attr.name
        )));
    }
    let sub = parent.attr.sub_attr(&p.name).ok_or_else(|| {
        ScimError::invalid_filter(format!(
            "'{}' has no sub-attribute '{}' (it has {})",
            parent.attr.name,
            p.name,
            parent
                .attr
                .sub
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    Ok(Resolved {
        sub: Some(sub),
        ..parent
    })
}

/// Resolves the attribute of a value filter `attr[…]`: it must be complex.
pub fn resolve_value_path(rt: &ResourceType, p: &AttrPath) -> Result<Resolved, ScimError> {
    let r = resolve(rt, p)?;
    if !r.attr.is_complex() || r.sub.is_some() {
        return Err(ScimError::invalid_filter(format!(
            "'{p}' is not a complex attribute; value filters '[…]' apply to complex attributes"
        )));
    }
    Ok(r)
}

/// True when the path names the enterprise extension (used by the search document).
pub fn is_enterprise(owner: Owner) -> bool {
    matches!(owner, Owner::Extension(s) if s.id == ENTERPRISE_URN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{GROUP_TYPE, USER_TYPE};

    fn r(rt: &ResourceType, s: &str) -> Result<Resolved, ScimError> {
        resolve(rt, &AttrPath::parse(s).map_err(ScimError::invalid_filter)?)
    }

    #[test]
    fn names_resolve_case_insensitively_with_or_without_urns() {
        assert!(r(&USER_TYPE, "USERNAME").is_ok_and(|x| x.attr.name == "userName"));
        assert!(
            r(
                &USER_TYPE,
                "urn:ietf:params:scim:schemas:core:2.0:User:name.GIVENNAME"
            )
            .is_ok_and(|x| x.display() == "name.givenName")
        );
        let d = r(
            &USER_TYPE,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        );
        assert!(d.is_ok_and(|x| is_enterprise(x.owner)));
        assert!(r(&USER_TYPE, "costCenter").is_ok_and(|x| is_enterprise(x.owner)));
        assert!(
            r(&USER_TYPE, "meta.lastModified").is_ok_and(|x| x.leaf().ty == AttrType::DateTime)
        );
        assert!(r(&GROUP_TYPE, "members.value").is_ok());
        assert!(
            r(&USER_TYPE, "manager")
                .and_then(Resolved::with_default_value)
                .is_ok_and(|x| x.display().ends_with("manager.value"))
        );
    }

    #[test]
    fn unknown_or_unfilterable_paths_are_invalid_filter() {
        for p in [
            "nickname.x",
            "title.sub",
            "bogus",
            "emails.bogus",
            "password",
            "urn:x:y:User:title",
            "members.value",
        ] {
            assert!(
                r(&USER_TYPE, p).is_err_and(|e| e.status == 400),
                "{p} should not resolve"
            );
        }
        assert!(
            r(&USER_TYPE, "name")
                .and_then(Resolved::with_default_value)
                .is_err_and(|e| e.detail.contains("name.givenName"))
        );
    }
}
