//! actix-web: one module per surface, the auth extractor, the server factory.

pub mod auth;
pub mod body;
pub mod error;
pub mod limiter;
pub mod ops;
pub mod scim;
pub mod telemetry;

use crate::auth::Verifier;
use crate::config::Settings;
use crate::store::Db;
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;

/// Shared by every worker.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub verifier: Arc<Verifier>,
    pub limiter: Arc<limiter::Limiter>,
    pub settings: Arc<Settings>,
    /// Base of every emitted URL, without the `/scim/v2` suffix.
    pub public_base: String,
}

impl AppState {
    pub fn new(db: Db, settings: Settings, public_base: String) -> AppState {
        AppState {
            db,
            verifier: Arc::new(Verifier::default()),
            limiter: limiter::Limiter::new(settings.max_in_flight_per_tenant),
            settings: Arc::new(settings),
            public_base: public_base.trim_end_matches('/').to_string(),
        }
    }

    pub fn scim_base(&self) -> String {
        format!("{}/scim/v2", self.public_base)
    }
}

/// Runs `f` on the blocking pool, inside the caller's tracing span.
pub async fn blocking<T, F>(f: F) -> Result<T, error::ApiError>
where
    F: FnOnce() -> Result<T, error::ApiError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    web::block(move || span.in_scope(f)).await?
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    ops::configure(cfg);
    cfg.service(web::scope("/scim/v2").configure(scim::configure));
}

/// Builds the server on an already-bound listener (tests bind port 0).
pub fn server(state: AppState, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let workers = state.settings.workers;
    let data = web::Data::new(state);
    let mut srv = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(tracing_actix_web::TracingLogger::<telemetry::RootSpan>::new())
            .configure(configure)
            .default_service(web::to(ops::not_found))
    })
    .listen(listener)?;
    if let Some(w) = workers {
        srv = srv.workers(w);
    }
    Ok(srv.run())
}
