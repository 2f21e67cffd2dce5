//! The SCIM surface (`/scim/v2`). Users and Groups share generic handlers over
//! the `Resource` trait; discovery is static; `/Bulk` runs through the same
//! provisioning functions.

mod bulk;
mod discovery;
mod resources;

use super::ops::{method_not_allowed, not_found, not_implemented};
use actix_web::web;
use resources::{Groups, Users};

pub fn configure(cfg: &mut web::ServiceConfig) {
    resources::routes::<Users>(cfg, "/Users");
    resources::routes::<Groups>(cfg, "/Groups");
    discovery::configure(cfg);
    cfg.service(
        web::resource("/.search")
            .route(web::post().to(resources::search_all))
            .default_service(web::to(method_not_allowed)),
    );
    cfg.service(
        web::resource("/Bulk")
            .route(web::post().to(bulk::bulk))
            .default_service(web::to(method_not_allowed)),
    );
    for path in ["/Me", "/Me/{tail:.*}"] {
        cfg.service(web::resource(path).to(not_implemented));
    }
    cfg.default_service(web::to(not_found));
}
