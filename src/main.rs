//! `custodian`: CLI entry only.

use clap::Parser;
use custodian::cli::{Cli, Command, PolicyCommand, TokenCommand, TombstoneCommand};
use custodian::clock::{Clock, SystemClock};
use custodian::config::{LogFormat, Settings, redact_url};
use custodian::deprovision::service::Deprov;
use custodian::store::{self, Db};
use secrecy::ExposeSecret;
use std::process::ExitCode;
use std::sync::Arc;

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
    match run(cli.command, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
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
    // The gate's connections come on top of SCIM's (`AppState::new`).
    Db::open(url, settings.total_connections(), create)
        .map(|db| db.with_deadlines(settings.db_deadlines()))
        .map_err(|e| e.to_string())
}

fn run(command: Command, mut settings: Settings) -> Result<(), String> {
    match command {
        Command::Serve { bind } => {
            if let Some(b) = bind {
                settings.bind = b;
            }
            serve(settings)
        }
        Command::Migrate => {
            open(&settings, true)?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Token { command } => token(command, &settings),
        Command::Tombstone { command } => tombstone(command, &settings),
        Command::Policy {
            command: PolicyCommand::Check { file },
        } => policy_check(file.or(settings.policy_file)),
        Command::Openapi => {
            print!("{}", custodian::http::admin::openapi::document());
            Ok(())
        }
    }
}

fn policy_check(file: Option<std::path::PathBuf>) -> Result<(), String> {
    use custodian::deprovision::policy;
    let (set, source) = match &file {
        Some(f) => (
            policy::load(f).map_err(|e| e.to_string())?,
            f.display().to_string(),
        ),
        None => (policy::PolicySet::default(), "built-in policy".to_string()),
    };
    let mut out = serde_json::Map::new();
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
    let db = open(&settings, true)?;
    let listener = std::net::TcpListener::bind(&settings.bind)
        .map_err(|e| format!("cannot bind {}: {e}", settings.bind))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let base = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    tracing::info!(bind = %local, public_url = %base, "custodian listening; SCIM base {base}/scim/v2");
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
    start_scheduler(db.clone(), Arc::clone(&deprov));
    start_checkpointer(db.clone());
    start_relay(
        db.clone(),
        Arc::clone(&deprov),
        custodian::events::relay::RelayOptions::from_settings(&settings),
    );
    let policy_file = settings.policy_file.clone();
    let reload_db = db.clone();
    let state = custodian::http::AppState::new(db, Arc::clone(&deprov), settings, base);
    let rt = actix_web::rt::System::new();
    rt.block_on(async move {
        reload_on_sighup(deprov, reload_db, policy_file);
        let server = custodian::http::server(state, listener).map_err(|e| e.to_string())?;
        server.await.map_err(|e| e.to_string())
    })
}

/// Grace expiry needs no external cron: a thread runs what is due every 30 s.
/// Several replicas may run it at once; each disposal is claimed in the database.
/// The same thread keeps planner statistics fresh (every 5 s on PostgreSQL, a
/// catalog query when nothing changed; every 10 minutes on SQLite).
fn start_scheduler(db: Db, deprov: Arc<Deprov>) {
    std::thread::spawn(move || {
        let mut passes: u64 = 0;
        loop {
            db.refresh_statistics();
            if passes.is_multiple_of(120) {
                db.optimize();
            }
            if passes.is_multiple_of(6) {
                match deprov.run_due(&db) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(disposals = n, "scheduled disposals ran"),
                    Err(e) => tracing::error!(error = %e, "scheduler pass failed"),
                }
            }
            passes += 1;
            std::thread::sleep(std::time::Duration::from_secs(5));
        }
    });
}

/// SQLite: WAL checkpoints run here, five times a second, rather than inside
/// the commit of whichever request crosses the WAL size limit.
fn start_checkpointer(db: Db) {
    if db.backend() != custodian::store::Backend::Sqlite {
        return;
    }
    std::thread::spawn(move || {
        loop {
            db.checkpoint_passive();
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
}

/// Webhook delivery: a pass every 2 s starts a worker thread for each endpoint
/// not already being delivered to (each endpoint is leased in the database, so
/// replicas share the work without double delivery); a slow endpoint holds
/// only its own worker.
fn start_relay(db: Db, deprov: Arc<Deprov>, opts: custodian::events::relay::RelayOptions) {
    std::thread::spawn(move || {
        // Webhook secrets are named by `secret_env` in the policy: any variable name.
        let relay = Arc::new(custodian::events::relay::Relay::with_options(
            Box::new(|name: &str| std::env::var(name).ok()),
            opts,
        ));
        loop {
            if let Err(e) = relay.spawn_pass(&db, &deprov) {
                tracing::error!(error = %e, "webhook relay pass failed");
            }
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    });
}

/// SIGHUP re-reads the policy file; an invalid file keeps the old policy and says so.
fn reload_on_sighup(deprov: Arc<Deprov>, db: Db, file: Option<std::path::PathBuf>) {
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
                    deprov.replace_policies(p);
                    match deprov.recompute_schedules(&db) {
                        Ok(n) => tracing::info!(schedules_moved = n, "SIGHUP: policy reloaded"),
                        Err(e) => {
                            tracing::error!(error = %e, "SIGHUP: policy reloaded, but pending schedules were not recomputed")
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

fn token(command: TokenCommand, settings: &Settings) -> Result<(), String> {
    let db = open(settings, false)?;
    match command {
        TokenCommand::Create {
            tenant,
            scope,
            name,
            acts_as,
        } => {
            let scope = scope.parse()?;
            let t = custodian::auth::create_token(&db, &tenant, scope, &name, acts_as.as_deref())
                .map_err(|e| e.to_string())?;
            eprintln!(
                "created {scope} token {} for tenant '{}'; it is shown once:",
                t.id, t.tenant
            );
            println!("{}", t.plaintext);
            Ok(())
        }
        TokenCommand::List { tenant } => {
            let rows = db
                .read(|c| store::tokens::list(c, tenant.as_deref()))
                .map_err(|e| e.to_string())?;
            println!(
                "{:<16}  {:<16}  {:<6}  {:<20}  {:<27}  revoked",
                "id", "tenant", "scope", "name", "created"
            );
            for (t, tenant) in rows {
                println!(
                    "{:<16}  {:<16}  {:<6}  {:<20}  {:<27}  {}",
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
                Err(format!("no active token with id {id}"))
            }
        }
    }
}

fn tombstone(command: TombstoneCommand, settings: &Settings) -> Result<(), String> {
    use custodian::deprovision::tombstone::{IdType, sso_value};
    let db = open(settings, false)?;
    let tenant_id = |name: &str| -> Result<String, String> {
        db.read(|c| store::tokens::find_tenant(c, name))
            .map_err(|e| e.to_string())?
            .map(|t| t.id)
            .ok_or_else(|| format!("no tenant named '{name}'"))
    };
    match command {
        TombstoneCommand::List { tenant } => {
            let t = tenant_id(&tenant)?;
            let rows = db
                .read(|c| store::reads::tombstones::all(c, &t))
                .map_err(|e| e.to_string())?;
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
                return Err("name an identifier: --user-name, --email, --external-id or --issuer with --subject".into());
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
                return Err("no live tombstone matches that identifier".into());
            }
            eprintln!("lifted {n} tombstone(s)");
            Ok(())
        }
    }
}
