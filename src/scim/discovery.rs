//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`: generated from the same
//! definitions the server runs on, so discovery never promises what does not work.

use super::bulk::Limits;
use super::list::{DEFAULT_COUNT, MAX_COUNT, list_response};
use super::schema::{GROUP_TYPE, USER_TYPE, all_schemas};
use serde_json::{Value, json};

pub fn service_provider_config(base: &str, bulk: Limits) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": bulk.max_operations,
            "maxPayloadSize": bulk.max_payload_size,
        },
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        // RFC 9865. No cursorTimeout: a cursor is a position, not server state.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_COUNT,
            "maxPageSize": MAX_COUNT,
        },
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A tenant token created with `custodian token create`, sent as `Authorization: Bearer <token>` (Basic with the token as password is also accepted).",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        }
    })
}

pub fn resource_types(base: &str) -> Value {
    let items = vec![USER_TYPE.to_json(base), GROUP_TYPE.to_json(base)];
    list_response(items.len() as i64, 1, items)
}

pub fn resource_type(base: &str, id: &str) -> Option<Value> {
    [&USER_TYPE, &GROUP_TYPE]
        .into_iter()
        .find(|rt| rt.name == id)
        .map(|rt| rt.to_json(base))
}

pub fn schemas(base: &str) -> Value {
    let items: Vec<Value> = all_schemas().iter().map(|s| s.to_json(base)).collect();
    list_response(items.len() as i64, 1, items)
}

pub fn schema(base: &str, id: &str) -> Option<Value> {
    all_schemas()
        .into_iter()
        .find(|s| s.id == id)
        .map(|s| s.to_json(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lists_what_is_served() {
        let rts = resource_types("http://h/scim/v2");
        assert_eq!(rts["totalResults"], 2);
        assert_eq!(rts["Resources"][0]["endpoint"], "/Users");
        assert_eq!(
            rts["Resources"][0]["schemaExtensions"][0]["schema"],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        );
        assert!(resource_type("h", "Group").is_some() && resource_type("h", "Nope").is_none());
        assert_eq!(schemas("h")["totalResults"], 3);
        assert!(schema("h", "urn:ietf:params:scim:schemas:core:2.0:Group").is_some());
        let spc = service_provider_config(
            "h",
            Limits {
                max_operations: 7,
                max_payload_size: 4096,
            },
        );
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(
            spc["bulk"],
            json!({"supported": true, "maxOperations": 7, "maxPayloadSize": 4096})
        );
    }
}
