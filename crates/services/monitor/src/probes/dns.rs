//! `dns` ("global names"): a name must resolve, through the configured resolver (or the
//! server's /etc/resolv.conf), to every expected address. The resolver keeps no cache
//! and ignores /etc/hosts, so each check asks the DNS server.

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A `dns` probe.
pub struct Dns {
    resolver: TokioResolver,
    name: String,
    expect: Vec<IpAddr>,
    via: String,
}

impl Dns {
    /// A probe of `name` through `resolver` (`ip` or `ip:port`; `None`: the system's).
    pub fn new(name: &str, resolver: Option<&str>, expect: &[String], timeout: Duration) -> Result<Dns, String> {
        let (builder, via) = match resolver {
            Some(r) => {
                let addr: SocketAddr = r
                    .parse()
                    .or_else(|_| r.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| format!("resolver: expected ip or ip:port, found {r:?}"))?;
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                (
                    Resolver::builder_with_config(ResolverConfig::from_name_servers(vec![ns]), TokioRuntimeProvider::default()),
                    addr.to_string(),
                )
            }
            None => (
                Resolver::builder_tokio().map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?,
                "the system's resolver".to_string(),
            ),
        };
        let mut builder = builder;
        let o = builder.options_mut();
        o.cache_size = 0;
        o.use_hosts_file = ResolveHosts::Never;
        o.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        o.timeout = timeout;
        o.attempts = 1;
        o.ndots = 0;
        let resolver = builder.build().map_err(|e| format!("cannot build the resolver: {e}"))?;
        let expect = expect
            .iter()
            .map(|e| e.parse().map_err(|_| format!("expect: expected an IP address, found {e:?}")))
            .collect::<Result<_, _>>()?;
        // A fully qualified name: no search domain is tried.
        let name = if name.ends_with('.') { name.to_string() } else { format!("{name}.") };
        Ok(Dns { resolver, name, expect, via })
    }

    /// Resolves the name and compares the answer with the expected addresses.
    pub async fn check(&self) -> Result<String, String> {
        let answer = self.resolver.lookup_ip(self.name.as_str()).await.map_err(|e| format!("{} via {}: {e}", self.name, self.via))?;
        let got: BTreeSet<IpAddr> = answer.iter().collect();
        let shown = got.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
        let missing: Vec<String> = self.expect.iter().filter(|e| !got.contains(e)).map(|e| e.to_string()).collect();
        if missing.is_empty() {
            Ok(format!("{} resolved via {} to {shown}", self.name, self.via))
        } else {
            Err(format!(
                "{} resolved via {} to {}, expected it to include {}",
                self.name,
                self.via,
                if shown.is_empty() { "nothing".into() } else { shown },
                missing.join(", ")
            ))
        }
    }
}
