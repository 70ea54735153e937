//! mware-client: what mware's command-line tools share.
//!
//! - [`api`]: the one HTTP client of the tools, bounded by a connect and a request timeout,
//!   with the token read from an environment variable and the API's own error message
//!   in every refusal;
//! - [`path`]: a route's path, written once in the service (`/api/v1/tasks/{name}/runs`),
//!   filled with the caller's values, each percent-encoded as one path segment;
//! - [`Subcommand`]: how a service crate contributes its subcommands (`mware tasks …`) to
//!   the binary, through the same registry as its routes;
//! - [`text`]: times and sizes as the tools print them.
#![deny(missing_docs)]

pub mod api;
mod cmd;
pub mod text;

pub use cmd::{BoxFut, CliEnv, Conn, RunFn, Subcommand};

/// Fills the `{name}` parameters of a route's path with `values`, each encoded as one path
/// segment (a `/`, `?`, `#`, `%` or space in a value cannot change which route is asked).
///
/// ```
/// assert_eq!(mware_client::path("/api/v1/tasks/{name}/runs", &[("name", "a b/c")]), "/api/v1/tasks/a%20b%2Fc/runs");
/// ```
pub fn path(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), &encode(v));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a path segment or a
/// query value).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_stay_one_segment() {
        assert_eq!(super::path("/a/{x}/b/{y}", &[("x", "t1.example.ru"), ("y", "../admin?z=1")]), "/a/t1.example.ru/b/..%2Fadmin%3Fz%3D1");
    }
}
