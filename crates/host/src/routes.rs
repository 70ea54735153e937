//! How a service declares its HTTP routes: for each one, who may call it
//! ([`Access`]) and which instance serves it ([`Scope`]). The binary turns these
//! declarations into the router, the auth checks, the forwarding to the owning
//! group's active instance and the security entries of the OpenAPI document, so it
//! knows no service's paths.
//!
//! Paths use axum's syntax (`/api/v1/domains/{domain}/mutexes/{name}`), which is
//! also OpenAPI's.

use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::MethodRouter;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who can reach the instance (read-only, harmless answers).
    Public,
    /// The API token (`api.token_env`), or the operator's token.
    Token,
    /// Only the operator's token (`api.operator_token_env`) when one is configured,
    /// else the API token: calls that move activity or override a holder.
    Operator,
    /// HTTP Basic credentials of a provisioning entity (res_config_curl can send
    /// nothing else); the handler itself checks them.
    Basic,
    /// The operator's token, or the service's own token (the environment variable
    /// [`crate::Service::token_env`] names from the group's section); never the API token
    /// alone: calls that reach into the site's network (device jobs).
    OwnToken,
}

impl Access {
    /// The OpenAPI security scheme name, if the call needs a credential.
    pub fn scheme(self) -> Option<&'static str> {
        match self {
            Access::Public => None,
            Access::Token => Some("bearer"),
            Access::Operator => Some("operator"),
            Access::Basic => Some("basic"),
            Access::OwnToken => Some("service_token"),
        }
    }
}

/// Which instance serves a route.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Whichever instance was asked (its own view: status, metrics).
    Instance,
    /// The active instance of this instance's group; others forward there.
    Group,
    /// The active instance of the group that owns the domain in this path parameter;
    /// others forward there. The domain is checked and made canonical first (one rule for
    /// every caller), and the handler finds the canonical name in the request's
    /// extensions as [`DomainArg`].
    Domain(&'static str),
    /// The group a service's own rule finds from this path parameter (e.g. the group
    /// serving a provisioning entity's domains); others forward there. The rule also
    /// names the canonical key, which the handler finds as [`ResolvedArg`].
    Resolve(&'static str, Resolver),
    /// The active instance of the group that owns the domain named by this query
    /// parameter or, when the query has none, this top-level field of a JSON body
    /// (`POST /calls {"domain": …}`); others forward there. Canonical as with
    /// [`Scope::Domain`] and put in the request as [`DomainArg`]. Without a domain some
    /// group serves, the call is served like [`Scope::Group`] (a list of the group's own),
    /// and the handler says what is wrong with the request, every problem at once.
    DomainField(&'static str),
}

/// A service's rule from a path parameter to the serving group: `Ok((group, key))`, or
/// `Err((http status, reason))` (e.g. 404 for an unknown entity), given the running
/// site and its domain tree.
pub type Resolver = fn(&mware_config::Site, &mware_config::DomainTree, &str) -> Result<(u32, String), (u16, String)>;

/// The canonical key a [`Scope::Resolve`] rule found, put in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedArg(pub String);

/// The address of the client that made a call, put in every declared route's request by
/// the layer that routed it: the TCP peer's address, or, for a call forwarded by another
/// instance of the site, the address that instance received the call from (the binary
/// takes it from the forwarder only; see `docs/architecture.md`, forwarding). Per-client
/// limits read this, never a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The canonical domain of a [`Scope::Domain`] call, put in the request's extensions
/// by the layer that routed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainArg(pub String);

/// Builds the answer a route gives while its service is not running here, from the
/// request's URI and the reason in words (a protocol with its own failure body, like
/// res_config_curl's, needs its own).
pub type Unavailable = fn(&Uri, &str) -> Response;

/// A service's early check of a call by its client's address ([`ClientAddr`]), run by
/// the binary's layer as soon as that address is settled: before the body is read, before
/// the call is forwarded to the owning group, before anything is allocated for it.
/// `Some(answer)` refuses the call with that answer (a client already over a limit: a
/// static 429); `None` lets it go on to the handler, which checks everything again. A
/// gate must be cheap and must refuse only what the handler would refuse too.
pub type Gate = std::sync::Arc<dyn Fn(std::net::IpAddr) -> Option<Response> + Send + Sync>;

/// One declared route.
pub struct Route {
    /// The method (`None`: any method).
    pub method: Option<Method>,
    /// The path, axum syntax.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Which instance serves it.
    pub scope: Scope,
    /// The handler, with its state applied.
    pub handler: MethodRouter,
    /// The answer while the service is not running (`None`: JSON 503 with the reason).
    pub unavailable: Option<Unavailable>,
    /// Served by the instance asked even while its service does not run there (the
    /// handler reads shared state through what [`crate::Service::attach`] gave it).
    pub anywhere: bool,
    /// The early check by client address (`None`: none).
    pub gate: Option<Gate>,
}

/// A service's routes.
#[derive(Default)]
pub struct Routes(pub Vec<Route>);

impl Routes {
    /// No routes.
    pub fn new() -> Self {
        Routes(vec![])
    }

    /// Adds a route for one method (`None`: any method).
    pub fn add(mut self, method: Option<Method>, path: &'static str, access: Access, scope: Scope, handler: MethodRouter) -> Self {
        self.0.push(Route { method, path, access, scope, handler, unavailable: None, anywhere: false, gate: None });
        self
    }

    /// Adds a GET route.
    pub fn get(self, path: &'static str, access: Access, scope: Scope, handler: MethodRouter) -> Self {
        self.add(Some(Method::GET), path, access, scope, handler)
    }

    /// Adds a POST route.
    pub fn post(self, path: &'static str, access: Access, scope: Scope, handler: MethodRouter) -> Self {
        self.add(Some(Method::POST), path, access, scope, handler)
    }

    /// Sets the not-running answer of every route added so far.
    pub fn unavailable(mut self, f: Unavailable) -> Self {
        for r in &mut self.0 {
            r.unavailable = Some(f);
        }
        self
    }

    /// Puts `gate` in front of the route added last (see [`Gate`]).
    pub fn gate(mut self, gate: Gate) -> Self {
        if let Some(r) = self.0.last_mut() {
            r.gate = Some(gate);
        }
        self
    }

    /// Marks every route added so far as served on any instance, whether or not the
    /// service runs there (only with [`Scope::Instance`]: a site-wide view any instance
    /// can build from the coordinator).
    pub fn anywhere(mut self) -> Self {
        for r in &mut self.0 {
            r.anywhere = true;
        }
        self
    }

    /// A plain router of these routes without any policy (for a service's own tests).
    pub fn into_router(self) -> axum::Router {
        self.0.into_iter().fold(axum::Router::new(), |r, route| r.route(route.path, route.handler))
    }
}
