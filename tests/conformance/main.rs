//! IdP replay conformance suite.
//!
//! Replays every scenario of `conformance/idp-replay.json` against a live Custodian server
//! (once on SQLite, once on Postgres when `CUSTODIAN_TEST_PG_URL` is set), following the
//! file's `_conventions` object to the letter:
//!
//! * headers: `scenario.default_headers` overlaid with `step.headers` (case-insensitive header
//!   names, a `null` value removes the header); `Content-Type: application/scim+json` is added only
//!   when neither layer mentions Content-Type and the step has a body;
//! * query strings: ordered `[name, value]` pairs encoded as `pct20` (default), `plus` or
//!   `plus_rawquotes`; `raw_query` is appended verbatim (after placeholder expansion) and wins
//!   over `query`;
//! * bodies: `body` (JSON, placeholders expanded) or `body_raw` (literal string);
//! * placeholders `{{name}}`, `{{upper:name}}`, `{{lower:name}}` everywhere (also in expectations),
//!   with whole-string raw substitution of non-string values;
//! * generators, dot-path captures, status / JSON-subset / header / empty-body expectations;
//! * `max_ms` is reported (printed), never asserted;
//! * isolation: every scenario runs with a token of its own fresh, empty tenant.
//!
//! # Transport: a hand-written HTTP/1.1 client instead of reqwest
//!
//! `plus_rawquotes` requires `"` and `@` to reach the server *raw* (that is what the MS SCIM
//! Validator sends). reqwest builds every request from a `url::Url`, and the `url` crate
//! percent-encodes `"` in the query component of special schemes (its `SPECIAL_QUERY` encode set
//! is CONTROLS + space `"` `#` `<` `>` `'`), so reqwest cannot put `filter=userName+eq+"x"` on the
//! wire; the unit test `url_crate_would_reencode_raw_quotes` pins that behaviour down. reqwest also
//! adds headers of its own (e.g. `accept: */*` when a step removed Accept) and, without its `gzip`
//! feature, hands back compressed bytes when a step sends Okta's `Accept-Encoding: gzip,deflate`.
//! So every request (not only the `plus_rawquotes` ones, to keep a single code path and identical
//! latency measurement) is written by hand over a `std::net::TcpStream`, run inside
//! `tokio::task::spawn_blocking` so the server's runtime is never blocked. The request carries
//! exactly: the request line, `Host`, the effective scenario headers in order, and
//! `Content-Length` when there is a body. Responses are parsed with Content-Length, chunked or
//! read-to-EOF framing and decoded (gzip / deflate via the `flate2` dev-dependency).

#[path = "../common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use serde_json::{Map, Value};

/// Scenario variables: generated values, captured values and `auth`.
type Vars = HashMap<String, Value>;

const CORPUS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/idp-replay.json");
const SUPPORTED_FORMAT_VERSION: u64 = 1;
const MIN_SCENARIOS: usize = 20;
const BODY_EXCERPT_BYTES: usize = 2048;
const DEFAULT_CONTENT_TYPE: &str = "application/scim+json";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_RESPONSE_HEAD_BYTES: usize = 1024 * 1024;

const SCENARIO_KEYS: &[&str] = &[
    "id",
    "idp",
    "title",
    "source",
    "notes",
    "preconditions",
    "default_headers",
    "generate",
    "max_ms",
    "steps",
];
const STEP_KEYS: &[&str] = &[
    "name",
    "method",
    "path",
    "query",
    "query_encoding",
    "raw_query",
    "headers",
    "body",
    "body_raw",
    "capture",
    "expect_status",
    "expect_json_subset",
    "expect_json_subset_if_200",
    "expect_body_empty",
    "expect_headers_subset",
    "max_ms",
    "role",
    "idp_shape",
    "notes",
    "source",
];
const GENERATORS: &[&str] = &[
    "uuid",
    "email",
    "upn",
    "upn_mixed_case",
    "alpha8",
    "group_name",
    "okta_user_id",
    "runscope_given",
    "runscope_family",
    "runscope_email",
];
const SCALAR_MATCHERS: &[&str] = &[
    "$present",
    "$absent",
    "$int",
    "$number",
    "$string",
    "$array",
    "$nonempty",
    "$empty",
    "$cleared",
];
const ARRAY_MATCHER_KEYS: &[&str] = &["$len", "$contains", "$excludes"];

mod capture;
mod corpus;
mod generators;
mod headers;
mod matcher;
mod placeholders;
mod query;
mod runner;
mod transport;
#[cfg(test)]
mod unit_tests;

use capture::*;
use corpus::*;
use generators::*;
use headers::*;
use matcher::*;
use placeholders::*;
use query::*;
use runner::*;
use transport::*;
