//! Unit tests of the pure parts (no server needed): placeholders, query encoding, captures,
//! headers, transport, generators and the corpus.

use super::*;
use support::*;

mod matcher_tests;
mod support;

#[test]
fn placeholder_whole_string_substitutes_raw_non_string_values() {
    let v = vars_of(serde_json::json!({
        "n": 42, "b": true, "obj": {"k": [1, 2]}, "nul": null, "s": "text"
    }));
    let body = serde_json::json!({
        "n": "{{n}}", "b": "{{b}}", "obj": "{{obj}}", "nul": "{{nul}}", "s": "{{s}}",
        "interp": "n={{n}} b={{b}} obj={{obj}}",
        "spaced": " {{n}}",
        "arr": ["{{n}}", "{{s}}"],
        "upper_num": "{{upper:n}}"
    });
    let expanded = must(expand_value(&body, &v), "expand");
    assert_eq!(
        expanded,
        serde_json::json!({
            "n": 42, "b": true, "obj": {"k": [1, 2]}, "nul": null, "s": "text",
            "interp": "n=42 b=true obj={\"k\":[1,2]}",
            "spaced": " 42",
            "arr": [42, "text"],
            "upper_num": 42
        })
    );
}

#[test]
fn placeholder_transforms_and_errors() {
    let v = vars_of(serde_json::json!({"u": "Alice.Smith@Contoso.example"}));
    assert_eq!(
        must(expand_str("{{upper:u}}", &v), "upper"),
        "ALICE.SMITH@CONTOSO.EXAMPLE"
    );
    assert_eq!(
        must(expand_str("x {{lower:u}} y", &v), "lower"),
        "x alice.smith@contoso.example y"
    );
    assert_eq!(
        must(expand_str("{{ u }}", &v), "spaces"),
        "Alice.Smith@Contoso.example"
    );
    assert_eq!(
        must(expand_str("a{{u}}b{{lower:u}}", &v), "two"),
        "aAlice.Smith@Contoso.examplebalice.smith@contoso.example"
    );
    assert_eq!(
        must(expand_str("no {{ end", &v), "unterminated"),
        "no {{ end"
    );
    assert_eq!(
        must(
            expand_value(&serde_json::json!({"{{lower:u}}": 1}), &v),
            "keys"
        ),
        serde_json::json!({"alice.smith@contoso.example": 1})
    );
    assert!(
        matches!(expand_str("{{nope}}", &v), Err(e) if e.contains("undefined variable `nope`"))
    );
    assert!(
        matches!(expand_str("{{title:u}}", &v), Err(e) if e.contains("unknown placeholder transform `title`"))
    );
    // body_raw is literal except for defined variables
    assert_eq!(
        must(
            expand_str_lenient("{\"a\": \"{{u}}\", {{nope}}", &v),
            "lenient"
        ),
        "{\"a\": \"Alice.Smith@Contoso.example\", {{nope}}"
    );
}

#[test]
fn query_encodings_on_filter_value() {
    let pairs = vec![
        ("filter".to_string(), "userName eq \"a b@c.d\"".to_string()),
        ("count".to_string(), "100".to_string()),
    ];
    assert_eq!(
        encode_query(&pairs, QueryEncoding::Pct20),
        "filter=userName%20eq%20%22a%20b%40c.d%22&count=100"
    );
    assert_eq!(
        encode_query(&pairs, QueryEncoding::Plus),
        "filter=userName+eq+%22a+b%40c.d%22&count=100"
    );
    assert_eq!(
        encode_query(&pairs, QueryEncoding::PlusRawQuotes),
        "filter=userName+eq+\"a+b@c.d\"&count=100"
    );
}

#[test]
fn query_encodings_escape_delimiters_and_non_ascii() {
    let pairs = vec![("a b".to_string(), "x+y&z=w~*é".to_string())];
    assert_eq!(
        encode_query(&pairs, QueryEncoding::Pct20),
        "a%20b=x%2By%26z%3Dw~%2A%C3%A9"
    );
    assert_eq!(
        encode_query(&pairs, QueryEncoding::Plus),
        "a+b=x%2By%26z%3Dw%7E*%C3%A9"
    );
    assert_eq!(
        encode_query(&pairs, QueryEncoding::PlusRawQuotes),
        "a+b=x%2By%26z%3Dw%7E*%C3%A9"
    );
    assert_eq!(encode_query(&[], QueryEncoding::Pct20), "");
    assert!(QueryEncoding::parse("raw").is_err());
}

#[test]
fn url_crate_would_reencode_raw_quotes() {
    // Why the runner does not use reqwest: its Url re-encodes the raw quotes of plus_rawquotes.
    let url = must(
        reqwest::Url::parse("http://127.0.0.1:1/scim/v2/Users?filter=userName+eq+\"a+b@c.d\""),
        "parse",
    );
    assert_eq!(url.query(), Some("filter=userName+eq+%22a+b@c.d%22"));
}

#[test]
fn capture_dot_paths() {
    let body = serde_json::json!({
        "id": "u1",
        "meta": {"created": "2024-01-01T00:00:00Z"},
        "Resources": [{"id": "r0"}, {"id": "r1", "emails": [{"value": "e"}]}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}, "n": 7},
        "nothing": null
    });
    let get = |p: &str| must(resolve_path(&body, p), p).clone();
    assert_eq!(get("id"), serde_json::json!("u1"));
    assert_eq!(
        get("meta.created"),
        serde_json::json!("2024-01-01T00:00:00Z")
    );
    assert_eq!(get("Resources.0.id"), serde_json::json!("r0"));
    assert_eq!(get("Resources.1.emails.0.value"), serde_json::json!("e"));
    assert_eq!(
        get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value"),
        serde_json::json!("m1")
    );
    assert_eq!(
        get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.n"),
        serde_json::json!(7)
    );
    assert_eq!(
        get("Resources.1"),
        serde_json::json!({"id": "r1", "emails": [{"value": "e"}]})
    );
    for (path, fragment) in [
        ("missing", "no key matching `missing`"),
        ("meta.version", "no key matching `version` at `meta`"),
        ("Resources.2.id", "index 2 out of range"),
        ("Resources.x", "is not an index"),
        ("id.more", "cannot descend into string"),
        ("nothing", "resolved to null"),
        ("meta.", "ends with a '.'"),
        ("", "empty capture path"),
    ] {
        match resolve_path(&body, path) {
            Ok(v) => panic!("path `{path}` unexpectedly resolved to {v}"),
            Err(e) => assert!(
                e.contains(fragment),
                "path `{path}`: error {e:?} lacks {fragment:?}"
            ),
        }
    }
}

#[test]
fn headers_overlay_null_removal_and_default_content_type() {
    let v = vars_of(serde_json::json!({"auth": "Bearer t"}));
    let defaults = serde_json::json!({
        "Authorization": "{{auth}}", "Accept": "application/scim+json", "User-Agent": "Okta"
    });
    let overlay =
        serde_json::json!({"accept": "application/json", "User-Agent": null, "X-Extra": "1"});
    let headers = must(
        effective_headers(defaults.as_object(), overlay.as_object(), true, &v),
        "headers",
    );
    let expected: Vec<(String, String)> = [
        ("Authorization", "Bearer t"),
        ("accept", "application/json"),
        ("X-Extra", "1"),
        ("Content-Type", "application/scim+json"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(headers, expected);
    // no body -> no default Content-Type
    let no_body = must(
        effective_headers(defaults.as_object(), None, false, &v),
        "no body",
    );
    assert!(
        !no_body
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    );
    // a defined Content-Type wins; an explicit null suppresses the default
    let ct = serde_json::json!({"Content-Type": "application/json"});
    let with_ct = must(effective_headers(None, ct.as_object(), true, &v), "ct");
    assert_eq!(
        with_ct,
        vec![("Content-Type".to_string(), "application/json".to_string())]
    );
    let null_ct = serde_json::json!({"Content-Type": null});
    let without = must(
        effective_headers(defaults.as_object(), null_ct.as_object(), true, &v),
        "null ct",
    );
    assert!(
        !without
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    );
    let bad = serde_json::json!({"X": "a\r\nInjected: 1"});
    assert!(effective_headers(None, bad.as_object(), false, &v).is_err());
}

#[test]
fn headers_subset_matcher() {
    let v = Vars::new();
    let actual = vec![
        (
            "content-type".to_string(),
            "application/scim+json; charset=utf-8".to_string(),
        ),
        ("ETag".to_string(), "W/\"1\"".to_string()),
    ];
    let ok =
        serde_json::json!({"Content-Type": "$contains:application/scim+json", "etag": "W/\"1\""});
    let Some(ok) = ok.as_object() else {
        panic!("object")
    };
    assert!(match_headers(ok, &actual, &v).is_empty());
    let bad =
        serde_json::json!({"Content-Type": "$contains:text/html", "Location": "$contains:/Users/"});
    let Some(bad) = bad.as_object() else {
        panic!("object")
    };
    let m = match_headers(bad, &actual, &v);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m[1].contains("<missing>"), "{m:?}");
}

#[test]
fn request_bytes_are_exactly_what_the_convention_says() {
    let server = must(parse_base_url("http://127.0.0.1:8080/scim/v2/"), "base");
    assert_eq!(server.authority, "127.0.0.1:8080");
    assert_eq!(server.base_path, "/scim/v2");
    let step = serde_json::json!({
        "name": "s", "method": "GET", "path": "/Users",
        "query": [["filter", "userName eq \"{{u}}\""], ["count", 5]],
        "query_encoding": "plus_rawquotes",
        "headers": {"Authorization": "{{auth}}"},
        "expect_status": 200
    });
    let Some(step) = step.as_object() else {
        panic!("object")
    };
    let v = vars_of(serde_json::json!({"u": "a b@c.d", "auth": "Bearer t"}));
    let prepared = must(prepare_request(step, None, &server, &v), "prepare");
    assert_eq!(
        String::from_utf8_lossy(&prepared.bytes),
        "GET /scim/v2/Users?filter=userName+eq+\"a+b@c.d\"&count=5 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer t\r\n\r\n"
    );

    let step = serde_json::json!({
        "name": "s", "method": "POST", "path": "/Users/{{id}}",
        "query": [["a", "1"]], "raw_query": "attributes=userName&x={{id}}",
        "body": {"n": "{{num}}"}, "expect_status": 200
    });
    let Some(step) = step.as_object() else {
        panic!("object")
    };
    let v = vars_of(serde_json::json!({"id": "42", "num": 7}));
    let prepared = must(prepare_request(step, None, &server, &v), "prepare");
    assert_eq!(
        String::from_utf8_lossy(&prepared.bytes),
        "POST /scim/v2/Users/42?attributes=userName&x=42 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/scim+json\r\nContent-Length: 7\r\n\r\n{\"n\":7}"
    );

    let step = serde_json::json!({
        "name": "s", "method": "POST", "path": "/Users", "body_raw": "{\"userName\": ", "expect_status": 400,
        "headers": {"Content-Type": "application/json"}
    });
    let Some(step) = step.as_object() else {
        panic!("object")
    };
    let prepared = must(
        prepare_request(step, None, &server, &Vars::new()),
        "prepare",
    );
    assert_eq!(
        String::from_utf8_lossy(&prepared.bytes),
        "POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"userName\": "
    );
}

#[test]
fn response_parsing_content_length_chunked_and_gzip() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Type: application/scim+json\r\nContent-Length: 11\r\n\r\n{\"id\":\"x\"}\nEXTRA";
    let r = must(read_response(&mut &raw[..], "POST"), "content-length");
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"{\"id\":\"x\"}\n");
    assert_eq!(r.header("CONTENT-TYPE"), Some("application/scim+json"));

    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n";
    let r = must(read_response(&mut &raw[..], "GET"), "chunked");
    assert_eq!(r.body, b"{\"a\":1}");

    let raw = b"HTTP/1.1 204 No Content\r\nContent-Type: application/scim+json\r\n\r\n";
    let r = must(read_response(&mut &raw[..], "DELETE"), "204");
    assert_eq!((r.status, r.body.len()), (204, 0));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    must(gz.write_all(b"{\"totalResults\":0}"), "gzip write");
    let compressed = must(gz.finish(), "gzip finish");
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        compressed.len()
    )
    .into_bytes();
    raw.extend_from_slice(&compressed);
    let r = must(read_response(&mut raw.as_slice(), "GET"), "gzip");
    assert_eq!(r.body, b"{\"totalResults\":0}");

    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    must(zlib.write_all(b"{}"), "zlib write");
    let compressed = must(zlib.finish(), "zlib finish");
    assert_eq!(
        must(decode_content("deflate", compressed), "deflate"),
        b"{}"
    );
    assert!(decode_content("br", vec![1]).is_err());
}

#[test]
fn transport_round_trip_over_loopback_preserves_bytes() {
    let listener = must(std::net::TcpListener::bind("127.0.0.1:0"), "bind");
    let authority = must(listener.local_addr(), "addr").to_string();
    let server = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut received = Vec::new();
        let mut buf = [0u8; 1024];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            .map_err(|e| e.to_string())?;
        Ok(received)
    });
    let request =
        b"GET /scim/v2/Users?filter=userName+eq+\"a+b@c.d\" HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let response = must(round_trip(&authority, &request, "GET"), "round trip");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"{}"[..])
    );
    let received = match server.join() {
        Ok(r) => must(r, "server"),
        Err(_) => panic!("loopback server thread panicked"),
    };
    assert_eq!(received, request);
}

#[test]
fn generators_produce_the_documented_shapes() {
    let spec = serde_json::json!({
        "id": "uuid", "mail": "email", "upn": "upn", "mixed": "upn_mixed_case", "a8": "alpha8",
        "g": "group_name", "okta": "okta_user_id", "rg": "runscope_given", "rf": "runscope_family",
        "re": "runscope_email"
    });
    let Some(spec) = spec.as_object() else {
        panic!("object")
    };
    let vars = must(generate_vars(spec), "generate");
    let s = |k: &str| {
        vars.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    assert!(uuid::Uuid::parse_str(&s("id")).is_ok(), "uuid {}", s("id"));
    assert!(s("mail").ends_with("@example.com") && s("mail").len() > "@example.com".len());
    assert!(s("upn").ends_with("@contoso.onmicrosoft.com"));
    let mixed = s("mixed");
    assert!(
        mixed.chars().any(|c| c.is_ascii_uppercase()) && mixed.contains('@'),
        "{mixed}"
    );
    assert_ne!(mixed, mixed.to_lowercase());
    assert!(s("a8").len() == 8 && s("a8").chars().all(|c| c.is_ascii_alphabetic()));
    assert!(s("g").starts_with("Grp-") && s("g").len() == 12);
    let okta = s("okta");
    assert!(
        okta.starts_with("00u")
            && okta.len() == 20
            && okta.chars().all(|c| c.is_ascii_alphanumeric())
    );
    let rg = s("rg");
    assert!(
        rg.starts_with("Runscope") && rg.len() == 11 && rg[8..].chars().all(|c| c.is_ascii_digit())
    );
    let rf = s("rf");
    assert!(rf.len() == 12 && rf[..1].chars().all(|c| c.is_ascii_uppercase()));
    assert!(
        rf[1..9].chars().all(|c| c.is_ascii_lowercase())
            && rf[9..].chars().all(|c| c.is_ascii_digit())
    );
    assert_eq!(s("re"), format!("{rg}{rf}@atko.com"));
    let again = must(generate_vars(spec), "generate again");
    assert_ne!(
        again.get("id"),
        vars.get("id"),
        "generators must be random per run"
    );
    let bad = serde_json::json!({"x": "nope"});
    let Some(bad) = bad.as_object() else {
        panic!("object")
    };
    assert!(generate_vars(bad).is_err());
}

#[test]
fn corpus_is_well_formed_for_this_runner() {
    let scenarios = must(load_corpus(), "load corpus");
    assert!(
        scenarios.len() >= MIN_SCENARIOS,
        "only {} scenarios",
        scenarios.len()
    );
    let problems: Vec<String> = scenarios.iter().flat_map(validate_scenario).collect();
    assert!(
        problems.is_empty(),
        "corpus problems:\n{}",
        problems.join("\n")
    );
    let ids: HashSet<String> = scenarios.iter().map(scenario_id).collect();
    assert_eq!(ids.len(), scenarios.len(), "duplicate scenario ids");
}
