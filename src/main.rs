//! `custodian`: CLI entry only.

use clap::Parser;
use custodian::cli::{
    Cli, Command, DisposalsCommand, Failure, PolicyCommand, TokenCommand, TombstoneCommand,
};
use custodian::clock::{Clock, SystemClock};
use custodian::config::{LogFormat, Settings, redact_url};
use custodian::deprovision::service::Deprov;
use custodian::store::{self, Db};
use secrecy::ExposeSecret;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref(), &|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Held until `main` returns: dropping it flushes the log lines still queued.
    let _log_writer = init_tracing(&settings);
    // A panic's message can quote request data: log where, never what.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %at, "internal panic (message withheld: it may contain request data)");
    }));
    let serving = matches!(cli.command, Command::Serve { .. });
    match run(cli.command, settings) {
        Ok(()) => ExitCode::SUCCESS,
        // `serve` logs (JSON when configured); the CLI commands tell the user.
        Err(e) if serving => {
            tracing::error!(error = %e.message(), "custodian cannot serve");
            ExitCode::from(e.code())
        }
        Err(e) => {
            eprintln!("error: {}", e.message());
            ExitCode::from(e.code())
        }
    }
}

/// glibc gives threads that allocate at the same time their own malloc arenas
/// (up to eight per core), and an arena keeps the memory it once held. With
/// two HTTP workers, the blocking pool and the background threads, the server's
/// peak RSS over workloads 1–6 was 110 MiB; with two arenas, 72 MiB at the same
/// throughput (`bench/analysis.md`). `MALLOC_ARENA_MAX`, when set, still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: sets an allocator parameter; called first thing in `main`,
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Log lines queued for the log thread before a request waits for it: enough
/// for bursts, small enough (about 1 MiB) to keep memory flat if the log
/// thread falls behind under sustained load (the default is 128k lines).
const LOG_QUEUE_LINES: usize = 4096;

/// Log lines are written to stderr by a dedicated thread, so a request never
/// waits on a `write` system call (one info line per request). Nothing is
/// dropped: a request waits only when `LOG_QUEUE_LINES` are queued.
fn init_tracing(s: &Settings) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&s.log).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let _ = match s.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}

fn open(settings: &Settings, create: bool) -> Result<Db, String> {
    let url = settings.database_url.expose_secret();
    eprintln!("database: {}", redact_url(url));
    open_quiet(settings, create)
}

/// `open` without the user-facing line (`serve` logs its configuration).
fn open_quiet(settings: &Settings, create: bool) -> Result<Db, String> {
    let url = settings.database_url.expose_secret();
    // The gate's connections come on top of SCIM's (`AppState::new`).
    Db::open_with(
        url,
        settings.total_connections(),
        create,
        settings.prepared_statements,
    )
    .map(|db| db.with_deadlines(settings.db_deadlines()))
    .map_err(|e| e.to_string())
}

fn run(command: Command, mut settings: Settings) -> Result<(), Failure> {
    match command {
        Command::Serve { bind } => {
            if let Some(b) = bind {
                settings.bind = b;
            }
            Ok(serve(settings)?)
        }
        Command::Migrate => {
            open(&settings, true)?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Token { command } => token(command, &settings),
        Command::Tombstone { command } => tombstone(command, &settings),
        Command::Policy {
            command: PolicyCommand::Check { file, json },
        } => policy_check(file.or(settings.policy_file), json),
        Command::Healthcheck { url, timeout } => healthcheck(url, timeout, &settings),
        Command::Backup { file } => {
            let out =
                custodian::backup::backup_command(&settings, &|| open(&settings, false), &file)?;
            println!("{out}");
            Ok(())
        }
        Command::Restore { file } => {
            let out =
                custodian::backup::restore_command(&settings, &|| open(&settings, false), &file)?;
            println!("{out}");
            Ok(())
        }
        Command::Disposals {
            command: DisposalsCommand::Reapply,
        } => {
            // Not journaled: what it writes back is in the journal already.
            let out = custodian::backup::reapply_command(&settings, &|| open(&settings, false))?;
            println!("{out}");
            Ok(())
        }
        Command::Openapi => {
            print!("{}", custodian::http::admin::openapi::document());
            Ok(())
        }
    }
}

/// `db`, journaling its disposals, lifts and releases to the disposal journal
/// (when there is one: always on SQLite, on PostgreSQL when `journal_path` is set).
fn journaled(db: Db, settings: &Settings) -> Result<Db, String> {
    match settings.journal_file() {
        Some(path) => Ok(db.with_journal(Arc::new(custodian::journal::Journal::open(&path)?))),
        None => Ok(db),
    }
}

/// `custodian healthcheck`: GET /healthz of the running server, bounded.
fn healthcheck(url: Option<String>, timeout: u64, settings: &Settings) -> Result<(), Failure> {
    let url = match url {
        Some(u) => u,
        None => {
            let addr: std::net::SocketAddr = settings.bind.parse().map_err(|_| {
                Failure::Usage(format!(
                    "bind '{}' is not an address: pass --url",
                    settings.bind
                ))
            })?;
            // A wildcard bind listens on loopback too.
            let ip = match addr.ip() {
                std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
                    std::net::Ipv4Addr::LOCALHOST.into()
                }
                std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
                    std::net::Ipv6Addr::LOCALHOST.into()
                }
                ip => ip,
            };
            format!(
                "http://{}/healthz",
                std::net::SocketAddr::new(ip, addr.port())
            )
        }
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(timeout.max(1)))
        .build();
    match agent.get(&url).call() {
        Ok(r) if r.status() == 200 => Ok(()),
        Ok(r) => Err(Failure::Runtime(format!("{url} answered {}", r.status()))),
        Err(e) => Err(Failure::Runtime(format!("{url}: {e}"))),
    }
}

fn policy_check(file: Option<std::path::PathBuf>, json: bool) -> Result<(), Failure> {
    use custodian::deprovision::policy;
    let source = file.as_ref().map_or_else(
        || "built-in policy".to_string(),
        |f| f.display().to_string(),
    );
    let set = match &file {
        Some(f) => match policy::load(f) {
            Ok(set) => set,
            Err(e) => {
                if json {
                    let v = serde_json::json!({
                        "valid": false, "source": source,
                        "error": {"file": e.file, "line": e.line, "message": e.message},
                    });
                    println!("{v}");
                }
                return Err(Failure::PolicyInvalid(e.to_string()));
            }
        },
        None => policy::PolicySet::default(),
    };
    let mut out = serde_json::Map::new();
    if json {
        out.insert("valid".into(), serde_json::Value::Bool(true));
    }
    out.insert("source".into(), serde_json::Value::String(source));
    let entry = |p: &policy::Policy| {
        let mut v = serde_json::to_value(p).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("digest".into(), serde_json::Value::String(p.digest()));
        }
        v
    };
    out.insert("default".into(), entry(&set.default));
    let tenants: serde_json::Map<String, serde_json::Value> = set
        .tenants
        .iter()
        .map(|(n, p)| (n.clone(), entry(p)))
        .collect();
    out.insert("tenants".into(), serde_json::Value::Object(tenants));
    if json {
        out.insert("warnings".into(), serde_json::json!(set.warnings));
        println!("{}", serde_json::Value::Object(out));
        return Ok(());
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(out)).map_err(|e| e.to_string())?
    );
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn serve(settings: Settings) -> Result<(), String> {
    // One line with the version and the effective configuration (`Settings`'
    // Debug redacts the database password and the tombstone key).
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = ?settings, "custodian starting");
    // SQLite: held while serving, so `custodian restore` cannot replace the file.
    let _serving = match settings.sqlite_path() {
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            Some(custodian::backup::lock_for_serving(&p)?)
        }
        None => None,
    };
    let db = open_quiet(&settings, true)?;
    // A restored backup must not bring disposed people back.
    match settings.journal_file() {
        Some(j) => {
            custodian::deprovision::journal::check_before_serving(&db, &j, &store::time::now())?
        }
        None => tracing::warn!(
            "no disposal journal (PostgreSQL without journal_path): restoring a backup can bring disposed people back; see README \"Backup and restore\""
        ),
    }
    let db = journaled(db, &settings)?;
    let listener = std::net::TcpListener::bind(&settings.bind)
        .map_err(|e| format!("cannot bind {}: {e}", settings.bind))?;
    let metrics_listener = match &settings.metrics_bind {
        Some(b) => Some(
            std::net::TcpListener::bind(b)
                .map_err(|e| format!("cannot bind metrics_bind {b}: {e}"))?,
        ),
        None => None,
    };
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let base = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    // Before anything records: the background tasks' first passes included.
    custodian::metrics::install();
    custodian::metrics::set_tenant_labels(settings.metrics_tenant_labels);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let deprov = Arc::new(custodian::deprovision::setup::open(&settings, &db, clock)?);
    // The policy file may have changed while the server was down.
    match deprov.recompute_schedules(&db) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            schedules_moved = n,
            "pending schedules follow the current policy"
        ),
        Err(e) => tracing::error!(error = %e, "pending schedules were not recomputed"),
    }
    // This replica in the registry: its first row now, so the others see it
    // before its first heartbeat; the heartbeat task keeps it fresh.
    let registry = custodian::background::replicas::Registry::new(deprov.policies().digest());
    if let Err(e) = registry.beat(&db) {
        tracing::warn!(error = %e, "replica registry: first heartbeat failed");
    }
    tracing::info!(
        replica_id = %registry.id(),
        policy_digest = %deprov.policies().digest(),
        "replica registered"
    );
    let background = custodian::background::tasks::start(
        &db,
        &deprov,
        settings.event_retention,
        settings.console_idle_timeout,
        custodian::events::relay::RelayOptions::from_settings(&settings),
        &registry,
    )?;
    let shutdown_timeout = Duration::from_secs(settings.shutdown_timeout);
    let policy_file = settings.policy_file.clone();
    let reload_db = db.clone();
    let state = custodian::http::AppState::new(db, Arc::clone(&deprov), settings, base.clone())
        .with_background(Arc::clone(&background.supervisor))
        .with_replica(Arc::clone(&registry));
    let rt = actix_web::rt::System::new();
    let served = rt.block_on(async move {
        reload_on_sighup(deprov, reload_db, policy_file, registry);
        let server =
            custodian::http::server(state.clone(), listener).map_err(|e| e.to_string())?;
        let mut handles = vec![server.handle()];
        if let Some(l) = metrics_listener {
            let addr = l.local_addr().map_err(|e| e.to_string())?;
            let m = custodian::http::management_server(state, l).map_err(|e| e.to_string())?;
            handles.push(m.handle());
            tracing::info!(metrics_bind = %addr, "metrics listening (no token) on {addr}/metrics");
            actix_web::rt::spawn(m);
        }
        stop_on_signal(handles.clone());
        tracing::info!(bind = %local, public_url = %base, "custodian listening; SCIM base {base}/scim/v2");
        let served = server.await.map_err(|e| e.to_string());
        for h in handles.iter().skip(1) {
            h.stop(true).await;
        }
        served
    });
    tracing::info!("HTTP server stopped; stopping background tasks");
    background.shutdown(shutdown_timeout);
    match &served {
        Ok(()) => tracing::info!("custodian shut down"),
        Err(e) => tracing::error!(error = %e, "custodian shut down after a server error"),
    }
    served
}

/// SIGTERM or SIGINT: stop accepting, let in-flight requests finish (bounded
/// by `shutdown_timeout`, then `serve` stops the background tasks).
fn stop_on_signal(handles: Vec<actix_web::dev::ServerHandle>) {
    #[cfg(unix)]
    actix_web::rt::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot listen for SIGTERM/SIGINT; stop the process with SIGKILL");
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            "shutting down: no new connections, finishing requests in flight"
        );
        for h in handles.clone() {
            actix_web::rt::spawn(async move { h.stop(true).await });
        }
        // A second signal (an impatient operator's Ctrl-C) drops the requests
        // still running; the background tasks still stop cleanly.
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal: dropping the requests still in flight");
        for h in handles {
            h.stop(false).await;
        }
    });
}

/// SIGHUP re-reads the policy file; an invalid file keeps the old policy and says so.
/// A new policy's digest goes into the replica registry at once (this
/// replica's `/readyz`, and the others' at their next heartbeat).
fn reload_on_sighup(
    deprov: Arc<Deprov>,
    db: Db,
    file: Option<std::path::PathBuf>,
    registry: Arc<custodian::background::replicas::Registry>,
) {
    #[cfg(unix)]
    actix_web::rt::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; policy reload disabled");
            return;
        };
        while hup.recv().await.is_some() {
            let Some(f) = &file else {
                tracing::info!("SIGHUP: no policy_file configured; the built-in policy stays");
                continue;
            };
            match custodian::deprovision::policy::load(f) {
                Ok(p) => {
                    for w in &p.warnings {
                        tracing::warn!("policy: {w}");
                    }
                    let digest = p.digest();
                    deprov.replace_policies(p);
                    registry.set_policy_digest(digest.clone());
                    let (dp, d, reg) = (Arc::clone(&deprov), db.clone(), Arc::clone(&registry));
                    // Database writes: off the async runtime's thread.
                    let done = actix_web::rt::task::spawn_blocking(move || {
                        let beat = reg.beat(&d);
                        (dp.recompute_schedules(&d), beat)
                    })
                    .await;
                    match done {
                        Ok((Ok(n), beat)) => {
                            if let Err(e) = beat {
                                tracing::warn!(error = %e, "SIGHUP: the replica registry was not updated; the next heartbeat does it");
                            }
                            tracing::info!(schedules_moved = n, policy_digest = %digest, "SIGHUP: policy reloaded")
                        }
                        Ok((Err(e), _)) => {
                            tracing::error!(error = %e, policy_digest = %digest, "SIGHUP: policy reloaded, but pending schedules were not recomputed")
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "SIGHUP: the reload's database work panicked")
                        }
                    }
                }
                Err(e) => tracing::error!(
                    "SIGHUP: policy reload failed, keeping the previous policy: {e}"
                ),
            }
        }
    });
}

fn token(command: TokenCommand, settings: &Settings) -> Result<(), Failure> {
    use custodian::auth::MissingTenant;
    let db = open(settings, false)?;
    match command {
        TokenCommand::Create {
            tenant,
            create_tenant,
            scope,
            name,
            acts_as,
        } => {
            let scope = scope.parse().map_err(Failure::Usage)?;
            let missing = if create_tenant {
                MissingTenant::Create
            } else {
                MissingTenant::Refuse
            };
            let t = custodian::auth::issue_token(
                &db,
                &tenant,
                scope,
                &name,
                acts_as.as_deref(),
                missing,
            )
            .map_err(|e| match e {
                store::StoreError::NotFound => Failure::NotFound(format!(
                    "no tenant named '{tenant}' (`token list` shows the tenants that have tokens); \
                     pass --create-tenant to create it"
                )),
                e => Failure::Runtime(e.to_string()),
            })?;
            if t.tenant_created {
                eprintln!("created tenant '{}'", t.tenant);
            }
            eprintln!(
                "created {scope} token {} for tenant '{}'; it is shown once:",
                t.id, t.tenant
            );
            println!("{}", t.plaintext);
            Ok(())
        }
        TokenCommand::List { tenant, json } => {
            let rows = db
                .read(|c| store::tokens::list(c, tenant.as_deref()))
                .map_err(|e| e.to_string())?;
            if json {
                let rows: Vec<serde_json::Value> = rows
                    .into_iter()
                    .map(|(t, tenant)| {
                        serde_json::json!({
                            "id": t.id, "tenant": tenant, "scope": t.scope, "name": t.name,
                            "actsAs": t.acts_as, "createdAt": t.created_at, "revokedAt": t.revoked_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
                return Ok(());
            }
            println!(
                "{:<16}  {:<16}  {:<7}  {:<20}  {:<27}  revoked",
                "id", "tenant", "scope", "name", "created"
            );
            for (t, tenant) in rows {
                println!(
                    "{:<16}  {:<16}  {:<7}  {:<20}  {:<27}  {}",
                    t.id,
                    tenant,
                    t.scope,
                    t.name,
                    t.created_at,
                    t.revoked_at.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            let now = store::time::now();
            let done = db
                .write(|c| store::tokens::revoke(c, &id, &now))
                .map_err(|e| e.to_string())?;
            if done {
                eprintln!("token {id} revoked");
                Ok(())
            } else {
                Err(Failure::NotFound(format!("no active token with id {id}")))
            }
        }
    }
}

fn tombstone(command: TombstoneCommand, settings: &Settings) -> Result<(), Failure> {
    use custodian::deprovision::tombstone::{IdType, sso_value};
    let db = journaled(open(settings, false)?, settings)?;
    let tenant_id = |name: &str| -> Result<String, Failure> {
        db.read(|c| store::tokens::find_tenant(c, name))
            .map_err(|e| e.to_string())?
            .map(|t| t.id)
            .ok_or_else(|| Failure::NotFound(format!("no tenant named '{name}'")))
    };
    match command {
        TombstoneCommand::List { tenant, json } => {
            let t = tenant_id(&tenant)?;
            let rows = db
                .read(|c| store::reads::tombstones::all(c, &t))
                .map_err(|e| e.to_string())?;
            if json {
                let rows: Vec<serde_json::Value> = rows
                    .into_iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.id, "disposalId": r.disposal_id, "createdAt": r.created_at,
                            "liftedAt": r.lifted_at, "identifierTypes": r.identifier_types,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
                return Ok(());
            }
            println!("{:<36}  {:<27}  {:<27}  types", "id", "created", "lifted");
            for r in rows {
                println!(
                    "{:<36}  {:<27}  {:<27}  {}",
                    r.id,
                    r.created_at,
                    r.lifted_at.as_deref().unwrap_or("-"),
                    r.identifier_types.join(",")
                );
            }
            Ok(())
        }
        TombstoneCommand::Lift {
            tenant,
            user_name,
            email,
            external_id,
            issuer,
            subject,
        } => {
            let t = tenant_id(&tenant)?;
            let mut ids = Vec::new();
            if let Some(v) = user_name {
                ids.push((IdType::UserName, v));
            }
            if let Some(v) = email {
                ids.push((IdType::Email, v));
            }
            if let Some(v) = external_id {
                ids.push((IdType::ExternalId, v));
            }
            if let (Some(i), Some(s)) = (issuer, subject) {
                ids.push((IdType::Sso, sso_value(&i, &s)));
            }
            if ids.is_empty() {
                return Err(Failure::Usage(
                    "name an identifier: --user-name, --email, --external-id or --issuer with --subject".into(),
                ));
            }
            let keys = custodian::deprovision::setup::load_keys(settings, &db)?;
            custodian::deprovision::setup::check_key(&db, &keys)?;
            let now = store::time::now();
            let n = custodian::deprovision::commands::tombstones::apply(
                &db,
                &keys,
                &t,
                &ids,
                custodian::deprovision::commands::tombstones::Action::Lift,
                "cli",
                &now,
            )
            .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(Failure::NotFound(
                    "no live tombstone matches that identifier".into(),
                ));
            }
            eprintln!("lifted {n} tombstone(s)");
            Ok(())
        }
    }
}
