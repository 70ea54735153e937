//! The Callback API (REST + JSON) with its OpenAPI description. Every route takes the API
//! token (orders carry customers' numbers). A new order is routed by its body's `domain`,
//! the list by `?domain=`, one order by the group in its id (`<group>-<hex>`): the host
//! forwards each to the active instance of that group.

use crate::error::CallbackError;
use crate::handle::Inner;
use crate::order::{Attempt, Order, OrderState, Outcome};
use crate::validate::{self, Owner};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use mware_host::{Access, ApiError, ResolvedArg, Routes, Scope};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::OpenApi;

/// The routes' paths, written once: the routes and `mware callback` use them.
pub(crate) mod paths {
    /// The orders.
    pub const ORDERS: &str = "/api/callback/v1/orders";
    /// One order.
    pub const ORDER: &str = "/api/callback/v1/orders/{id}";
}

type Result<T> = std::result::Result<T, CallbackError>;

/// A new order (the body of `POST /api/callback/v1/orders`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CreateBody {
    /// The domain (its group takes the order; plain numbers are its users).
    pub domain: String,
    /// The customer: a number, or a `sip:`/`tel:` URI (no control characters, ≤ 256 bytes).
    pub number: String,
    /// The queue whose operators are rung (one of `queue` and `operator`).
    pub queue: Option<String>,
    /// One operator to ring, as listed in a queue of the `callback` section.
    pub operator: Option<String>,
    /// No attempt before this time: RFC 3339 UTC, or ms since the Unix epoch.
    pub not_before: Option<String>,
    /// No attempt after this time (must be in the future): RFC 3339 UTC, or ms.
    pub not_after: Option<String>,
    /// A note for the operator (≤ 1024 bytes).
    pub note: Option<String>,
}

/// An order as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The order with every attempt.
    #[serde(flatten)]
    pub order: Order,
    /// How many attempts were made.
    pub attempt_count: usize,
    /// `not_before_ms` in RFC 3339 UTC.
    pub not_before: Option<String>,
    /// `not_after_ms` in RFC 3339 UTC.
    pub not_after: Option<String>,
    /// When its next attempt may start, ms since the Unix epoch (the later of
    /// `next_at_ms` and `not_before_ms`); none while an attempt is under way or once the
    /// order is finished.
    pub next_attempt_ms: Option<u64>,
    /// `next_attempt_ms` in RFC 3339 UTC.
    pub next_attempt: Option<String>,
    /// The operator its latest attempt rang (none before the first attempt).
    pub last_operator: Option<String>,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        let next =
            (order.open_attempt().is_none() && !order.state.finished()).then(|| order.next_at_ms.max(order.not_before_ms.unwrap_or(0)));
        OrderView {
            attempt_count: order.attempts.len(),
            next_attempt_ms: next,
            next_attempt: next.map(validate::rfc3339),
            last_operator: order.attempts.last().map(|a| a.operator.clone()),
            not_before: order.not_before_ms.map(validate::rfc3339),
            not_after: order.not_after_ms.map(validate::rfc3339),
            order,
        }
    }
}

/// The orders listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse {
    /// Oldest first.
    pub orders: Vec<OrderView>,
    /// How many.
    pub total: usize,
}

/// `?domain=&state=`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only this domain's orders.
    pub domain: Option<String>,
    /// Only orders in this state.
    pub state: Option<String>,
}

/// The group an order id names (`{group}-{hex}`), for [`Scope::Resolve`].
fn order_group(_: &mware_config::Site, _: &mware_config::DomainTree, id: &str) -> std::result::Result<(u32, String), (u16, String)> {
    match id.split_once('-').and_then(|(g, _)| g.parse::<u32>().ok()) {
        Some(g) if id.len() <= 64 => Ok((g, id.to_string())),
        _ => Err((404, format!("no callback order {id:?} (an order id is <group>-<hex>)"))),
    }
}

pub(crate) fn routes(inner: Arc<Inner>) -> Routes {
    const ID: Scope = Scope::Resolve("id", order_group as mware_host::Resolver);
    let s = |m: axum::routing::MethodRouter<Arc<Inner>>| m.with_state(inner.clone());
    Routes::new()
        .post(paths::ORDERS, Access::Token, Scope::DomainField("domain"), s(post(create)))
        .get(paths::ORDERS, Access::Token, Scope::DomainField("domain"), s(get(list)))
        .get(paths::ORDER, Access::Token, ID, s(get(get_one)))
        .add(Some(Method::DELETE), paths::ORDER, Access::Token, ID, s(delete(cancel)))
}

/// Takes a callback order: an operator of the queue is rung first, then the customer,
/// and the two are connected; unanswered attempts are retried within the window.
#[utoipa::path(
    post,
    path = "/api/callback/v1/orders",
    tag = "callback",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Taken; durable before this answer", body = OrderView),
        (status = 400, description = "Bad input; every problem, the first field named; nothing stored", body = ApiError),
        (status = 429, description = "Too many open orders in the domain", body = ApiError),
        (status = 503, description = "Not active here (retryable)", body = ApiError),
    )
)]
async fn create(State(inner): State<Arc<Inner>>, body: Bytes) -> Result<(StatusCode, Json<OrderView>)> {
    let a = inner.active()?;
    let site = inner.site().ok_or_else(|| CallbackError::NotRunning("starting".into()))?;
    let o = {
        // Checked before any await: the check's context is not sent across threads.
        let tree = mware_config::DomainTree::build(&site);
        let owner = |d: &str| match tree.route(d) {
            Some(g) if g == a.group => Owner::Us,
            Some(g) => Owner::Group(g),
            None => Owner::Nobody,
        };
        let cfg = a.cfg();
        let cx = validate::Ctx { cfg: &cfg, group: a.group, owner: &owner, now_ms: mware_coord::now_ms() };
        let id = format!("{}-{:016x}", a.group, rand::random::<u64>());
        validate::order(&body, &cx, id).map_err(CallbackError::Invalid)?
    };
    let o = a.create(o).await?;
    tracing::info!(order = %o.id, domain = %o.domain, queue = ?o.queue, operator = ?o.operator, "callback order taken");
    Ok((StatusCode::CREATED, Json(o.into())))
}

/// The group's orders (of `domain`, in `state`), oldest first: what operators see.
#[utoipa::path(
    get,
    path = "/api/callback/v1/orders",
    tag = "callback",
    params(
        ("domain" = Option<String>, Query, description = "Only this domain's orders"),
        ("state" = Option<String>, Query, description = "Only orders in this state: waiting, calling, completed, failed, cancelled"),
    ),
    responses((status = 200, description = "Orders", body = ListResponse), (status = 400, description = "Bad filter", body = ApiError), (status = 503, description = "Not active here", body = ApiError))
)]
async fn list(State(inner): State<Arc<Inner>>, Query(q): Query<ListQuery>) -> Result<Json<ListResponse>> {
    let a = inner.active()?;
    let domain = q.domain.map(|d| mware_config::canonical(&d).map_err(|e| CallbackError::invalid("domain", e.to_string()))).transpose()?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(OrderState::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            CallbackError::invalid(
                "state",
                format!("expected waiting, calling, completed, failed or cancelled, found {}", mware_config::quote(s)),
            )
        })?),
    };
    let orders: Vec<OrderView> = a.list(domain.as_deref(), state).into_iter().map(OrderView::from).collect();
    Ok(Json(ListResponse { total: orders.len(), orders }))
}

/// One order with every attempt: when, which operator, the call, the outcome.
#[utoipa::path(
    get,
    path = "/api/callback/v1/orders/{id}",
    tag = "callback",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "The order", body = OrderView), (status = 404, description = "No such order", body = ApiError))
)]
async fn get_one(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<Json<OrderView>> {
    let a = inner.active()?;
    a.get(&id).map(|o| Json(o.into())).ok_or_else(|| CallbackError::NotFound(format!("no callback order {id}")))
}

/// Cancels an order: no further attempt; a call under way is hung up.
#[utoipa::path(
    delete,
    path = "/api/callback/v1/orders/{id}",
    tag = "callback",
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "Cancelled; durable before this answer", body = OrderView),
        (status = 404, description = "No such order", body = ApiError),
        (status = 409, description = "Already finished", body = ApiError),
    )
)]
async fn cancel(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<Json<OrderView>> {
    Ok(Json(inner.active()?.cancel_order(&id).await?.into()))
}

#[derive(OpenApi)]
#[openapi(
    paths(create, list, get_one, cancel),
    components(schemas(CreateBody, OrderView, ListResponse, Order, Attempt, OrderState, Outcome, ApiError)),
    tags((name = "callback", description = "Callback orders: an operator of a queue, then the customer, connected by mware"))
)]
struct ApiDoc;

/// The OpenAPI description of these routes, for the daemon to merge.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
