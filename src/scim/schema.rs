//! Attribute definitions for the resources Custodian serves (RFC 7643 §4, §8.7).
//! One table drives input normalisation, PATCH, filter resolution, projection and
//! the `/Schemas` discovery document, so what is advertised is what works.

use serde_json::{Value, json};

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub unique_server: bool,
    pub canonical: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub: &'static [Attr],
    pub description: &'static str,
}

impl Attr {
    pub fn sub_attr(&self, name: &str) -> Option<&'static Attr> {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
    pub fn is_complex(&self) -> bool {
        self.ty == AttrType::Complex
    }

    fn to_json(&self) -> Value {
        let mut j = json!({
            "name": self.name,
            "type": self.ty.as_str(),
            "multiValued": self.multi,
            "description": self.description,
            "required": self.required,
            "mutability": match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
                Mutability::WriteOnly => "writeOnly",
            },
            "returned": match self.returned {
                Returned::Always => "always",
                Returned::Never => "never",
                Returned::Default => "default",
                Returned::Request => "request",
            },
        });
        if let Some(o) = j.as_object_mut() {
            if self.ty != AttrType::Complex && self.ty != AttrType::Boolean {
                o.insert("caseExact".into(), Value::Bool(self.case_exact));
                o.insert(
                    "uniqueness".into(),
                    Value::String(if self.unique_server { "server" } else { "none" }.into()),
                );
            }
            if !self.canonical.is_empty() {
                o.insert("canonicalValues".into(), json!(self.canonical));
            }
            if !self.reference_types.is_empty() {
                o.insert("referenceTypes".into(), json!(self.reference_types));
            }
            if !self.sub.is_empty() {
                let subs: Vec<Value> = self.sub.iter().map(Attr::to_json).collect();
                o.insert("subAttributes".into(), Value::Array(subs));
            }
        }
        j
    }
}

/// A schema: a URN plus its attributes.
#[derive(Debug)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attrs: &'static [Attr],
}

impl Schema {
    pub fn attr(&self, name: &str) -> Option<&'static Attr> {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn to_json(&self, location_base: &str) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attrs.iter().map(Attr::to_json).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{location_base}/Schemas/{}", self.id),
            }
        })
    }
}

const fn base(name: &'static str, ty: AttrType, description: &'static str) -> Attr {
    Attr {
        name,
        ty,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique_server: false,
        canonical: &[],
        reference_types: &[],
        sub: &[],
        description,
    }
}

const fn s(name: &'static str, description: &'static str) -> Attr {
    base(name, AttrType::String, description)
}

const fn with_canonical(mut a: Attr, canonical: &'static [&'static str]) -> Attr {
    a.canonical = canonical;
    a
}

const fn exact(mut a: Attr) -> Attr {
    a.case_exact = true;
    a
}

const fn reference(name: &'static str, types: &'static [&'static str], d: &'static str) -> Attr {
    let mut a = base(name, AttrType::Reference, d);
    a.reference_types = types;
    a.case_exact = true;
    a
}

const fn multi_complex(name: &'static str, sub: &'static [Attr], d: &'static str) -> Attr {
    let mut a = base(name, AttrType::Complex, d);
    a.multi = true;
    a.sub = sub;
    a
}

const fn read_only(mut a: Attr) -> Attr {
    a.mutability = Mutability::ReadOnly;
    a
}

const fn immutable(mut a: Attr) -> Attr {
    a.mutability = Mutability::Immutable;
    a
}

const PRIMARY: Attr = base(
    "primary",
    AttrType::Boolean,
    "Whether this is the primary value; at most one value may be primary.",
);
const DISPLAY: Attr = s("display", "A human-readable name, primarily for display.");

const EMAIL_SUB: &[Attr] = &[
    s("value", "The email address, canonicalized per RFC 5321."),
    DISPLAY,
    with_canonical(
        s("type", "A label: 'work', 'home', 'other'."),
        &["work", "home", "other"],
    ),
    PRIMARY,
];
const PHONE_SUB: &[Attr] = &[
    s("value", "The phone number."),
    DISPLAY,
    with_canonical(
        s(
            "type",
            "A label: 'work', 'home', 'mobile', 'fax', 'pager', 'other'.",
        ),
        &["work", "home", "mobile", "fax", "pager", "other"],
    ),
    PRIMARY,
];
const IM_SUB: &[Attr] = &[
    s("value", "The instant messaging address."),
    DISPLAY,
    s("type", "A label, e.g. 'aim', 'gtalk', 'xmpp'."),
    PRIMARY,
];
const PHOTO_SUB: &[Attr] = &[
    reference("value", &["external"], "URL of a photo of the user."),
    DISPLAY,
    with_canonical(
        s("type", "A label: 'photo' or 'thumbnail'."),
        &["photo", "thumbnail"],
    ),
    PRIMARY,
];
const ADDRESS_SUB: &[Attr] = &[
    s(
        "formatted",
        "The full mailing address, formatted for display.",
    ),
    s("streetAddress", "The full street address component."),
    s("locality", "The city or locality component."),
    s("region", "The state or region component."),
    s("postalCode", "The zip code or postal code component."),
    s("country", "The country name component."),
    with_canonical(
        s("type", "A label: 'work', 'home', 'other'."),
        &["work", "home", "other"],
    ),
    PRIMARY,
];
const GROUP_REF_SUB: &[Attr] = &[
    read_only(exact(s("value", "The identifier of the user's group."))),
    read_only(reference("$ref", &["Group"], "The URI of the group.")),
    read_only(s("display", "A human-readable name of the group.")),
    read_only(with_canonical(
        s("type", "'direct' or 'indirect' membership."),
        &["direct", "indirect"],
    )),
];
const VALUE_SUB: &[Attr] = &[
    s("value", "The value."),
    DISPLAY,
    s("type", "A label indicating the function."),
    PRIMARY,
];
const CERT_SUB: &[Attr] = &[
    base(
        "value",
        AttrType::Binary,
        "The DER-encoded X.509 certificate, base64.",
    ),
    DISPLAY,
    s("type", "A label indicating the function."),
    PRIMARY,
];
const NAME_SUB: &[Attr] = &[
    s("formatted", "The full name, formatted for display."),
    s("familyName", "The family name."),
    s("givenName", "The given name."),
    s("middleName", "The middle name(s)."),
    s("honorificPrefix", "The honorific prefix(es), e.g. 'Ms.'."),
    s("honorificSuffix", "The honorific suffix(es), e.g. 'III'."),
];

const fn complex(name: &'static str, sub: &'static [Attr], d: &'static str) -> Attr {
    let mut a = base(name, AttrType::Complex, d);
    a.sub = sub;
    a
}

const USER_NAME: Attr = {
    let mut a = s(
        "userName",
        "Unique identifier for the user, typically used to sign in. Unique per tenant, case-insensitively.",
    );
    a.required = true;
    a.unique_server = true;
    a
};

const PASSWORD: Attr = {
    let mut a = s(
        "password",
        "Accepted and discarded: Custodian never stores, logs or returns passwords.",
    );
    a.mutability = Mutability::WriteOnly;
    a.returned = Returned::Never;
    a
};

pub static USER_SCHEMA: Schema = Schema {
    id: USER_URN,
    name: "User",
    description: "User Account",
    attrs: &[
        USER_NAME,
        complex("name", NAME_SUB, "The components of the user's name."),
        s("displayName", "The name of the user, suitable for display."),
        s("nickName", "The casual way to address the user."),
        reference(
            "profileUrl",
            &["external"],
            "A URI of an online profile of the user.",
        ),
        s("title", "The user's title, e.g. 'Vice President'."),
        s(
            "userType",
            "The relationship between the organization and the user.",
        ),
        s(
            "preferredLanguage",
            "The user's preferred written or spoken language.",
        ),
        s("locale", "The user's default location, e.g. 'en-US'."),
        s(
            "timezone",
            "The user's time zone in IANA format, e.g. 'America/Denver'.",
        ),
        base(
            "active",
            AttrType::Boolean,
            "The user's administrative status.",
        ),
        PASSWORD,
        multi_complex("emails", EMAIL_SUB, "Email addresses for the user."),
        multi_complex("phoneNumbers", PHONE_SUB, "Phone numbers for the user."),
        multi_complex("ims", IM_SUB, "Instant messaging addresses for the user."),
        multi_complex("photos", PHOTO_SUB, "URLs of photos of the user."),
        multi_complex(
            "addresses",
            ADDRESS_SUB,
            "Physical mailing addresses for the user.",
        ),
        read_only(multi_complex(
            "groups",
            GROUP_REF_SUB,
            "Groups the user belongs to; read-only, managed through the Group resource.",
        )),
        multi_complex("entitlements", VALUE_SUB, "Entitlements of the user."),
        multi_complex("roles", VALUE_SUB, "Roles of the user."),
        multi_complex(
            "x509Certificates",
            CERT_SUB,
            "X.509 certificates of the user.",
        ),
    ],
};

const MANAGER_SUB: &[Attr] = &[
    s(
        "value",
        "The id of the SCIM resource representing the user's manager.",
    ),
    read_only(reference(
        "$ref",
        &["User"],
        "The URI of the manager's resource.",
    )),
    read_only(s("displayName", "The displayName of the user's manager.")),
];

pub static ENTERPRISE_SCHEMA: Schema = Schema {
    id: ENTERPRISE_URN,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attrs: &[
        s(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person.",
        ),
        s("costCenter", "Identifies the name of a cost center."),
        s("organization", "Identifies the name of an organization."),
        s("division", "Identifies the name of a division."),
        s("department", "Identifies the name of a department."),
        complex("manager", MANAGER_SUB, "The user's manager."),
    ],
};

const MEMBER_SUB: &[Attr] = &[
    immutable(exact(s("value", "Identifier of the member of this group."))),
    immutable(reference(
        "$ref",
        &["User", "Group"],
        "The URI of the member resource.",
    )),
    immutable(with_canonical(
        s("type", "The type of member: 'User' or 'Group'."),
        &["User", "Group"],
    )),
];

pub static GROUP_SCHEMA: Schema = Schema {
    id: GROUP_URN,
    name: "Group",
    description: "Group",
    attrs: &[
        {
            let mut a = s(
                "displayName",
                "A human-readable name for the group; unique per tenant.",
            );
            a.required = true;
            a.unique_server = true;
            a
        },
        multi_complex("members", MEMBER_SUB, "A list of members of the group."),
    ],
};

/// A resource type: its core schema and the extensions it accepts.
#[derive(Debug)]
pub struct ResourceType {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub core: &'static Schema,
    pub extensions: &'static [&'static Schema],
}

pub static USER_TYPE: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    core: &USER_SCHEMA,
    extensions: &[&ENTERPRISE_SCHEMA],
};

pub static GROUP_TYPE: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    core: &GROUP_SCHEMA,
    extensions: &[],
};

impl ResourceType {
    /// The extension schema with this URN (case-insensitively), if declared.
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    pub fn to_json(&self, location_base: &str) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.core.description,
            "schema": self.core.id,
            "schemaExtensions": self.extensions.iter()
                .map(|e| json!({"schema": e.id, "required": false}))
                .collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{location_base}/ResourceTypes/{}", self.name),
            }
        })
    }
}

/// Attributes every resource has (RFC 7643 §3.1), outside any schema's list.
pub fn is_common_attr(name: &str) -> bool {
    ["id", "externalId", "meta", "schemas"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

pub fn all_schemas() -> [&'static Schema; 3] {
    [&USER_SCHEMA, &GROUP_SCHEMA, &ENTERPRISE_SCHEMA]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_case_insensitive() {
        assert_eq!(
            USER_SCHEMA.attr("USERNAME").map(|a| a.name),
            Some("userName")
        );
        let emails = USER_SCHEMA.attr("emails");
        assert!(emails.is_some_and(|e| e.multi && e.sub_attr("Value").is_some()));
        assert!(
            USER_TYPE
                .extension(&ENTERPRISE_URN.to_lowercase())
                .is_some()
        );
    }

    #[test]
    fn discovery_json_marks_password_never_returned() {
        let j = USER_SCHEMA.to_json("http://x/scim/v2");
        let attrs = j["attributes"].as_array().cloned().unwrap_or_default();
        let pw = attrs.iter().find(|a| a["name"] == "password");
        assert!(pw.is_some_and(|p| p["returned"] == "never" && p["mutability"] == "writeOnly"));
    }
}
