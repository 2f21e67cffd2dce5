//! Python with the reference `standardwebhooks` library, for receivers that
//! verify deliveries as a real one would: `CUSTODIAN_TEST_PYTHON` when set
//! (`.ci/run` sets it to its venv), else a venv made once under the target
//! directory. And a child process that is killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The pinned library version (PyPI `standardwebhooks`).
pub const STANDARDWEBHOOKS: &str = "standardwebhooks==1.3.0";

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run python setup");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn has_library(py: &Path) -> bool {
    Command::new(py)
        .args(["-c", "import standardwebhooks"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python interpreter that can `import standardwebhooks`.
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        if let Some(p) = std::env::var_os("CUSTODIAN_TEST_PYTHON").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            assert!(
                has_library(&p),
                "CUSTODIAN_TEST_PYTHON cannot import standardwebhooks"
            );
            return p;
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-standardwebhooks");
        let py = dir.join("bin").join("python");
        if has_library(&py) {
            return py;
        }
        // Built beside and renamed into place, so a concurrent test binary
        // never sees half a venv.
        let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        run(Command::new("python3").args(["-m", "venv"]).arg(&tmp));
        run(Command::new(tmp.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            STANDARDWEBHOOKS,
        ]));
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        assert!(has_library(&py), "no standardwebhooks in {}", dir.display());
        py
    })
    .clone()
}

/// A child process (its stdout read line by line on a thread), killed on drop.
pub struct Proc {
    child: Child,
    pub lines: Receiver<String>,
}

impl Proc {
    /// Starts `cmd` with stdout piped (stderr inherited, for test output).
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines }
    }

    /// The next line, waiting at most `within`.
    pub fn line(&self, within: Duration) -> String {
        match self.lines.recv_timeout(within) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!("no output within {within:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the process ended"),
        }
    }

    /// Stops the process and waits for it (bounded: SIGKILL).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it has exited, waiting at most `within` (polled).
    pub fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A path in the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
