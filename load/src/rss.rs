//! The server's memory, read from /proc (Linux): VmHWM is the peak resident
//! set; writing 5 to clear_refs resets it, so each workload gets its own peak.

pub struct Server {
    pid: Option<u32>,
}

impl Server {
    pub fn new(pid: Option<u32>) -> Server {
        Server { pid }
    }

    /// Starts a new peak window; false when the kernel refused (then the peak
    /// reported is the peak since the server started).
    pub fn reset_peak(&self) -> bool {
        self.pid
            .is_some_and(|p| std::fs::write(format!("/proc/{p}/clear_refs"), "5").is_ok())
    }

    pub fn peak_mib(&self) -> Option<f64> {
        self.status_kib("VmHWM:").map(|k| k as f64 / 1024.0)
    }

    pub fn alive(&self) -> bool {
        self.pid
            .is_none_or(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
    }

    fn status_kib(&self, key: &str) -> Option<u64> {
        let pid = self.pid?;
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}
