//! JSON and markdown output.

use crate::ctx::Verification;
use crate::run::Stats;
use serde::Serialize;

#[derive(Serialize)]
pub struct Report<'a> {
    pub label: &'a str,
    pub mode: &'a str,
    pub started_at: String,
    pub config: serde_json::Value,
    pub results: &'a [Stats],
    pub verifications: &'a [Verification],
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One progress line on stderr.
pub fn line(s: &Stats) -> String {
    format!(
        "{:<58} {:>7} req {:>4} err {:>9.0} req/s  p50 {:>7} ms  p99 {:>7} ms  max {:>7} ms{}",
        s.workload,
        s.requests,
        s.errors,
        s.rps,
        fmt_ms(s.p50_ms),
        fmt_ms(s.p99_ms),
        fmt_ms(s.max_ms),
        s.server_peak_rss_mib
            .map(|m| format!("  rss {m:.0} MiB"))
            .unwrap_or_default()
    )
}

pub fn markdown(label: &str, results: &[Stats], verifications: &[Verification]) -> String {
    let mut out = format!("#### {label}\n\n");
    out.push_str("| workload | requests | errors | conc. | req/s | p50 ms | p99 ms | max ms | server peak RSS |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in results {
        out.push_str(&format!(
            "| {}{} | {} | {} | {} | {:.0} | {} | {} | {} | {} |\n",
            s.workload,
            s.note
                .as_deref()
                .map(|n| format!(" <br>*{n}*"))
                .unwrap_or_default(),
            s.requests,
            s.errors,
            s.concurrency,
            s.rps,
            fmt_ms(s.p50_ms),
            fmt_ms(s.p99_ms),
            fmt_ms(s.max_ms),
            s.server_peak_rss_mib
                .map(|m| format!("{m:.0} MiB"))
                .unwrap_or_else(|| "–".into()),
        ));
    }
    let failed: Vec<&Verification> = verifications.iter().filter(|v| v.failed > 0).collect();
    let checked: u64 = verifications.iter().map(|v| v.checked).sum();
    out.push_str(&format!(
        "\nVerified afterwards: {checked} checks in {} groups, {} failed.\n",
        verifications.len(),
        failed.iter().map(|v| v.failed).sum::<u64>()
    ));
    for v in failed {
        out.push_str(&format!(
            "- **{}: {}**: {} of {} failed ({})\n",
            v.workload,
            v.what,
            v.failed,
            v.checked,
            v.sample_failures.join("; ")
        ));
    }
    out
}
