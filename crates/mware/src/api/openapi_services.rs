//! OpenAPI entries for service routes whose crates carry no utoipa annotations
//! (pg_controller's status and the res_config_curl provisioning protocol). These
//! functions exist only to be described; the routes themselves are the services' own.

#![allow(dead_code)]

/// Every pg_controller group: each server's role, reachability, timeline, lag, the last
/// decision and its reason. 503 while pg_controller does not run on this instance.
#[utoipa::path(get, path = "/api/v1/pg", tag = "pg_controller",
    responses((status = 200, description = "state, reason and every group"), (status = 503, description = "pg_controller is not running here")))]
pub async fn pg_list() {}

/// One pg_controller group by key.
#[utoipa::path(get, path = "/api/v1/pg/{key}", tag = "pg_controller", params(("key" = String, Path, description = "pg group key")),
    responses((status = 200, description = "the group"), (status = 404, description = "no running group with that key"), (status = 503, description = "pg_controller is not running here")))]
pub async fn pg_one() {}

/// Asterisk res_config_curl protocol (form-encoded POST bodies; operators inside field names).
/// `single`: one line `k=v&...`, empty = not found; `multi`: one row per line;
/// `store`/`update`/`destroy`: a decimal count or `-1`; `require`: `0` or `-1`; `static`:
/// category/cat_metric/var_name/var_val lines. The entity is the tenant domain and is
/// forwarded to the active instance of the group serving it.
#[utoipa::path(post, path = "/provision/asterisk/{entity}/{family}/{op}", tag = "provisioning",
    params(("entity" = String, Path, description = "entity id (tenant domain)"),
           ("family" = String, Path, description = "family, e.g. endpoint, auth, aor"),
           ("op" = String, Path, description = "single, multi, store, update, destroy, require or static")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "protocol answer (text/plain)"), (status = 400, description = "bad request: failure answer"), (status = 503, description = "not running here: failure answer")))]
pub async fn provision() {}
