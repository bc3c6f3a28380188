//! The OpenAPI document, generated with utoipa from the handlers' `#[utoipa::path]`
//! annotations and served at `/api/openapi.json`. A test checks that every route of
//! [`super::routes`] appears in it.

use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use super::{
    announcements, auth, health, ipfilings, operator, public, replication, scans, workflow,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "beian API", description = "ICP filing registry: public queries, accounts, the filing workflow, self-check and probe."),
    paths(
        document, health::healthz, health::readyz,
        public::filed, public::public_filing, public::subject_search, public::false_information, public::codes, public::regions, public::keyring, public::check, public::probe,
        auth::register, auth::activate, auth::login, auth::login_verify, auth::logout, auth::me,
        auth::reset_request, auth::reset_confirm, auth::list_users, auth::create_user,
        auth::import_authorisation, auth::register_resend, auth::change_password,
        auth::contact_change, auth::contact_verify,
        workflow::submit, workflow::import, workflow::show, workflow::verify_access,
        workflow::approve, workflow::reject, workflow::change, workflow::cancel,
        workflow::cancel_modify, workflow::cancel_delete, workflow::renew, workflow::annual,
        workflow::withdraw, workflow::revoke, workflow::cancel_access, workflow::add_provider,
        workflow::certificate, workflow::review_queue, workflow::review_auto,
        workflow::empty_shells, workflow::attach_document, workflow::check_document,
        workflow::pre_approvals, workflow::review_bulletin_board, workflow::bulletin_boards,
        ipfilings::list, ipfilings::create, ipfilings::import, ipfilings::show,
        ipfilings::update, ipfilings::remove, ipfilings::units, ipfilings::template_download,
        announcements::list, announcements::create, announcements::show, announcements::remove,
        announcements::upload, announcements::download, announcements::remove_attachment,
        scans::list, scans::start, scans::show, scans::records,
        operator::outbox, operator::audit_verify, operator::snapshot, replication::feed,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The generated document.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "public",
    responses((status = 200, description = "this OpenAPI document")))]
pub async fn document() -> Response {
    axum::Json(spec()).into_response()
}
