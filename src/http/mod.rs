//! actix-web: one module per surface, the auth extractor, the server factory.

pub mod admin;
pub mod auth;
pub mod body;
pub mod console;
pub mod error;
pub mod import;
pub mod lenient_io;
pub mod limiter;
pub mod metrics;
pub mod ops;
pub mod scim;
pub mod telemetry;

use crate::auth::Verifier;
use crate::config::Settings;
use crate::store::Db;
use actix_http::HttpService;
use actix_http::error::DispatchError;
use actix_service::{ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::AppConfig;
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{App, web};
use std::net::TcpListener;
use std::sync::Arc;

/// Shared by every worker.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub svc: crate::provisioning::Services,
    pub verifier: Arc<Verifier>,
    /// Fair shares of the database connections for SCIM and admin requests.
    pub limiter: Arc<limiter::Limiter>,
    /// The gate's own budget, so logins keep working during an IdP import.
    pub gate_limiter: Arc<limiter::Limiter>,
    /// CPU-heavy work outside the database — renders of large list pages,
    /// parses of large bodies: one slot per core, half of them per tenant
    /// (its requests are already counted by `limiter`).
    pub cpu: Arc<limiter::Limiter>,
    pub settings: Arc<Settings>,
    /// Base of every emitted URL, without the `/scim/v2` suffix.
    pub public_base: String,
    /// The background tasks, for `/readyz` and the metrics (none until
    /// `with_background`: tests that run no tasks).
    pub background: Arc<crate::background::Supervisor>,
    /// This replica in the replica registry (`/readyz`, `GET
    /// /admin/v1/replicas`); `serve` passes the one its heartbeat task keeps
    /// (`with_replica`), else a registry that never beats.
    pub replica: Arc<crate::background::replicas::Registry>,
}

impl AppState {
    pub fn new(
        db: Db,
        deprov: std::sync::Arc<crate::deprovision::service::Deprov>,
        settings: Settings,
        public_base: String,
    ) -> AppState {
        let db = db.with_deadlines(settings.db_deadlines());
        BLOCKING_NICE.store(
            blocking_nice(db.backend(), settings.blocking_thread_nice),
            std::sync::atomic::Ordering::Relaxed,
        );
        // The write queue's thread runs tenants' writes too (SCIM DELETEs).
        crate::store::set_write_queue_nice(i32::from(settings.blocking_thread_nice));
        // Budgets out of the connections that exist (`serve` opens
        // `pool_size + gate_connections`): `gate_connections` for the gate
        // (at most half of a smaller pool), the rest for SCIM and admin. A
        // pool of one shares its connection.
        let pool = usize::try_from(db.pool_size()).unwrap_or(1).max(1);
        let gate = usize::try_from(settings.gate_connections())
            .unwrap_or(1)
            .clamp(1, (pool / 2).max(1));
        let scim = pool.saturating_sub(gate).max(1);
        let share = usize::try_from(settings.tenant_connection_share).unwrap_or(0);
        let queue = settings.max_in_flight_per_tenant;
        crate::metrics::install();
        let verifier = Arc::new(Verifier::new(
            crate::auth::AuthLimits::from_settings(&settings),
            Arc::clone(&deprov.clock),
        ));
        if db.backend() == crate::store::Backend::Postgres {
            use secrecy::ExposeSecret;
            // Behind a transaction-mode pooler (`prepared_statements =
            // false`) only `listen_url`, a direct connection, can listen: a
            // `LISTEN` through the pooler stays on a server connection it
            // lends to others.
            let url = match (&settings.listen_url, settings.prepared_statements) {
                (Some(u), _) => Some(u),
                (None, true) => Some(&settings.database_url),
                (None, false) => None,
            };
            // The thread ends with the verifier; without it tokens are
            // trusted for revocation_ttl_ms only.
            match url {
                Some(url) => {
                    if let Err(e) = crate::auth::revocation::spawn_listener(
                        &verifier.revocations,
                        url.expose_secret().to_string(),
                    ) {
                        tracing::warn!(error = %e, "cannot start the revocation listener");
                    }
                }
                None => tracing::info!(
                    "prepared_statements = false and no listen_url: no revocation listener; a token read live is trusted for revocation_ttl_ms"
                ),
            }
        }
        AppState {
            svc: crate::provisioning::Services {
                db: db.clone(),
                deprov: Arc::clone(&deprov),
                limits: settings.resource_limits(),
            },
            db,
            verifier,
            limiter: limiter::Limiter::new(scim, share, queue),
            gate_limiter: limiter::Limiter::new(gate, share, queue),
            cpu: limiter::Limiter::new(
                std::thread::available_parallelism().map_or(2, usize::from),
                0,
                usize::MAX,
            ),
            settings: Arc::new(settings),
            public_base: public_base.trim_end_matches('/').to_string(),
            background: crate::background::Supervisor::new(),
            replica: crate::background::replicas::Registry::new(deprov.policies().digest()),
        }
    }

    /// This state reporting `replica` (the registry `serve`'s heartbeat keeps).
    pub fn with_replica(self, replica: Arc<crate::background::replicas::Registry>) -> AppState {
        AppState { replica, ..self }
    }

    /// This state reporting `background`'s tasks.
    pub fn with_background(self, background: Arc<crate::background::Supervisor>) -> AppState {
        AppState { background, ..self }
    }

    pub fn scim_base(&self) -> String {
        format!("{}/scim/v2", self.public_base)
    }

    /// The SCIM base for this request: `public_url` (or the bind address), or,
    /// only with `trust_forwarded_headers`, what the proxy's `X-Forwarded-Proto`
    /// and `X-Forwarded-Host` say.
    pub fn scim_base_for(&self, req: &actix_web::HttpRequest) -> String {
        if self.settings.trust_forwarded_headers && self.settings.public_url.is_none() {
            let h = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(',').next().unwrap_or_default().trim().to_string())
                    .filter(|v| !v.is_empty() && !v.contains('/') && !v.contains(' '))
            };
            if let Some(host) = h("x-forwarded-host") {
                let proto = h("x-forwarded-proto")
                    .filter(|p| p == "http" || p == "https")
                    .unwrap_or_else(|| "https".into());
                return format!("{proto}://{host}/scim/v2");
            }
        }
        self.scim_base()
    }
}

/// Runs `f` on the blocking pool, inside the caller's tracing span.
pub async fn blocking<T, F>(f: F) -> Result<T, error::ApiError>
where
    F: FnOnce() -> Result<T, error::ApiError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    web::block(move || {
        lower_priority_once();
        span.in_scope(f)
    })
    .await?
}

/// The nice value of blocking-pool threads (`blocking_thread_nice`), set
/// once by `AppState::new`; process-wide, like the pool itself.
static BLOCKING_NICE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The nice value blocking-pool threads get: `blocking_thread_nice` on
/// SQLite, where the HTTP workers answer the gate's checks and point lookups
/// themselves and the blocking threads run the writes; none on PostgreSQL,
/// where every request's database work (those answers included) runs on a
/// blocking thread, so a nice value only puts requests that hold a pooled
/// connection, and perhaps row locks, behind every other process on the host
/// (PostgreSQL's own backends first): on a busy host they starved (issue 17:
/// at a load average of 25, gate checks took 1.2 s and more at `10`).
pub(crate) fn blocking_nice(backend: crate::store::Backend, configured: u8) -> i32 {
    match backend {
        crate::store::Backend::Sqlite => i32::from(configured),
        crate::store::Backend::Postgres => 0,
    }
}

/// Lowers the calling blocking-pool thread's CPU priority to
/// `blocking_thread_nice`, once per thread. The HTTP workers answer the
/// gate's checks and the IdPs' point lookups themselves; under one tenant's
/// flood the blocking threads running its writes would otherwise take the
/// CPU those answers wait for (flood: B's gate p99 5.4–7.5 ms at nice 0,
/// 3.6–4.2 ms at 10, B's PATCH p99 unchanged; BENCHMARKS.md). Nice only
/// orders threads competing for a busy CPU: an idle machine runs them alike.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn lower_priority_once() {
    thread_local!(static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    DONE.with(|done| {
        if done.replace(true) {
            return;
        }
        let nice = BLOCKING_NICE.load(std::sync::atomic::Ordering::Relaxed);
        if nice > 0 {
            // SAFETY: gettid has no arguments; setpriority changes only this
            // thread's own scheduling weight (raising nice needs no privilege).
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid);
                libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
            }
        }
    });
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn lower_priority_once() {}

/// One of `tenant`'s CPU slots (`AppState::cpu`), waited for without
/// blocking the worker: 503 past `request_deadline_ms`.
pub async fn cpu_slot(state: &AppState, tenant: &str) -> Result<limiter::Permit, error::ApiError> {
    let deadline = std::time::Duration::from_millis(state.settings.request_deadline_ms);
    let acquire = state.cpu.acquire(tenant, limiter::Kind::Read);
    match actix_web::rt::time::timeout(deadline, acquire).await {
        Ok(Ok(slot)) => Ok(slot),
        Ok(Err(_full)) => Err(error::ApiError::Overloaded {
            retry_after: state.settings.retry_after_seconds,
        }),
        Err(_elapsed) => Err(crate::store::StoreError::Deadline(
            "waited for this tenant's turn at the CPU past request_deadline_ms",
        )
        .into()),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    ops::configure(cfg);
    admin::configure(cfg);
    cfg.service(web::scope("/scim/v2").configure(scim::configure));
}

/// Builds the server on an already-bound listener (tests bind port 0). HTTP/1.1
/// only (TLS and HTTP/2 end at the reverse proxy); every connection's request
/// lines pass through `lenient_io` first. Signals are the caller's (`serve`
/// stops it gracefully on SIGTERM and SIGINT, within `shutdown_timeout`).
pub fn server(state: AppState, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let workers = state.settings.workers;
    let shutdown_timeout = state.settings.shutdown_timeout;
    let pool_size = state.db.pool_size();
    let console = state.settings.console;
    let data = web::Data::new(state);
    let mut builder = actix_server::Server::build().listen("custodian", listener, move || {
        let app = App::new()
            .app_data(data.clone())
            .wrap_fn(telemetry::finish)
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(tracing_actix_web::TracingLogger::<telemetry::RootSpan>::new())
            .configure(configure)
            .configure(|cfg| {
                if console {
                    console::configure(cfg);
                }
            })
            .default_service(web::to(ops::not_found));
        fn_service(|io: actix_rt::net::TcpStream| async move {
            let peer = io.peer_addr().ok();
            let _ = io.set_nodelay(true);
            Ok::<_, DispatchError>((lenient_io::LenientIo::new(io), peer))
        })
        .and_then(HttpService::build().h1(map_config(app, |_| AppConfig::default())))
    })?;
    if let Some(w) = workers {
        builder = builder.workers(w);
    }
    // Database work runs on each worker's blocking threads, and only
    // this many connections exist: more threads would only queue for one,
    // each holding its own stack and malloc arena (resident memory). The
    // default is 512 per worker.
    let blocking = usize::try_from(pool_size).unwrap_or(8).max(2);
    Ok(builder
        .worker_max_blocking_threads(blocking)
        .shutdown_timeout(shutdown_timeout)
        .disable_signals()
        .run())
}

/// The management listener (`metrics_bind`): `/metrics` without a token, and
/// nothing else; one worker.
pub fn management_server(
    state: AppState,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let shutdown_timeout = state.settings.shutdown_timeout;
    let data = web::Data::new(state);
    Ok(actix_server::Server::build()
        .listen("custodian-metrics", listener, move || {
            let app = App::new()
                .app_data(data.clone())
                .route("/metrics", web::get().to(metrics::scrape_open))
                .default_service(web::to(ops::not_found));
            HttpService::build()
                .h1(map_config(app, |_| AppConfig::default()))
                .tcp()
        })?
        .workers(1)
        .shutdown_timeout(shutdown_timeout)
        .disable_signals()
        .run())
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// A blocking-pool thread runs at `blocking_thread_nice`, below the
    /// HTTP worker (the test's own thread) that handed it the work.
    /// The nice value applies on SQLite only (`blocking_nice`).
    #[test]
    fn postgres_blocking_threads_keep_the_workers_priority() {
        use crate::store::Backend;
        assert_eq!(super::blocking_nice(Backend::Sqlite, 10), 10);
        assert_eq!(super::blocking_nice(Backend::Postgres, 10), 0);
        assert_eq!(super::blocking_nice(Backend::Sqlite, 0), 0);
    }

    #[actix_web::test]
    async fn blocking_threads_run_below_the_workers() {
        fn nice_of_this_thread() -> i32 {
            // SAFETY: reads this thread's own priority.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid);
                libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t)
            }
        }
        super::BLOCKING_NICE.store(10, std::sync::atomic::Ordering::Relaxed);
        let worker = nice_of_this_thread();
        let pooled = super::blocking(|| Ok(nice_of_this_thread())).await;
        assert_eq!(pooled.ok(), Some((worker + 10).min(19)));
    }
}
