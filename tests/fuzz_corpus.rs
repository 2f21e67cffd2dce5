//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! entry points the fuzz targets call (`custodian::fuzzing`), with the same
//! invariants, so every seed and every past crash stays a regression test that
//! needs no fuzzing tools or nightly compiler.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of `fuzz/corpus/<target>/`; fails when the directory is missing or empty.
fn corpus(target: &str) -> Vec<PathBuf> {
    files_in(&root().join("fuzz/corpus").join(target))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus directory {} is unreadable: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "corpus directory {} is empty",
        dir.display()
    );
    files
}

fn replay(target: &str, entry: fn(&[u8])) {
    let files = corpus(target);
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
            failed.push(
                file.strip_prefix(root())
                    .unwrap_or(file)
                    .display()
                    .to_string(),
            );
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} corpus files broke an invariant (messages above): {failed:#?}",
        failed.len(),
        files.len()
    );
}

/// A fuzz entry point: arbitrary bytes in, a panic when an invariant breaks.
type Entry = fn(&[u8]);

const TARGETS: &[(&str, Entry)] = &[
    ("filter_parse", custodian::fuzzing::filter_parse),
    ("patch_parse", custodian::fuzzing::patch_parse),
    ("patch_apply", custodian::fuzzing::patch_apply),
    ("pathless_keys", custodian::fuzzing::pathless_keys),
    ("projection_parse", custodian::fuzzing::projection_parse),
    ("search_request", custodian::fuzzing::search_request),
];

#[test]
fn filter_parse_corpus() {
    replay("filter_parse", custodian::fuzzing::filter_parse);
}

#[test]
fn patch_parse_corpus() {
    replay("patch_parse", custodian::fuzzing::patch_parse);
}

#[test]
fn patch_apply_corpus() {
    replay("patch_apply", custodian::fuzzing::patch_apply);
}

#[test]
fn pathless_keys_corpus() {
    replay("pathless_keys", custodian::fuzzing::pathless_keys);
}

#[test]
fn projection_parse_corpus() {
    replay("projection_parse", custodian::fuzzing::projection_parse);
}

#[test]
fn search_request_corpus() {
    replay("search_request", custodian::fuzzing::search_request);
}

/// Every fuzz target in `fuzz/Cargo.toml` has a corpus directory replayed here,
/// and every corpus directory belongs to a target.
#[test]
fn every_fuzz_target_has_a_replayed_corpus() {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap()).unwrap();
    let mut bins: Vec<String> = manifest["bin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    bins.sort();
    let mut replayed: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    replayed.sort();
    assert_eq!(
        bins, replayed,
        "fuzz/Cargo.toml targets vs. replayed targets"
    );
    let mut dirs: Vec<String> = std::fs::read_dir(root().join("fuzz/corpus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, replayed, "fuzz/corpus/ directories vs. targets");
    for (target, _) in TARGETS {
        let body = std::fs::read_to_string(
            root()
                .join("fuzz/fuzz_targets")
                .join(format!("{target}.rs")),
        )
        .unwrap();
        assert!(
            body.contains(&format!("custodian::fuzzing::{target}(")),
            "fuzz/fuzz_targets/{target}.rs does not call custodian::fuzzing::{target}"
        );
    }
}

#[test]
fn a_missing_or_empty_corpus_directory_fails() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(catch_unwind(|| files_in(&tmp.path().join("missing"))).is_err());
    assert!(catch_unwind(|| files_in(tmp.path())).is_err());
    std::fs::write(tmp.path().join("seed"), b"userName pr").unwrap();
    assert_eq!(files_in(tmp.path()).len(), 1);
}
