//! The paths of the service's routes, written once: the routes, the members' queries of
//! each other and `mware ms` use them.

/// Every process supervised on the instance.
pub const LIST: &str = "/api/v1/microservices";
/// Restart one.
pub const RESTART: &str = "/api/v1/microservices/{name}/restart";
/// Stop one.
pub const STOP: &str = "/api/v1/microservices/{name}/stop";
/// Start one.
pub const START: &str = "/api/v1/microservices/{name}/start";
/// The instance's site log.
pub const LOGS: &str = "/api/v1/logs";
