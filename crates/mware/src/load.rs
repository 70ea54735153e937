//! Reading a site file from disk: a whole site, or a bootstrap file with only
//! `site` and `coordination` (the site itself then comes from the coordinator).

use anyhow::Context;
use mware_config::{Coordination, Problem, Severity, Site};
use mware_registry::validate;
use serde::Deserialize;
use std::path::Path;

/// What a config file holds.
pub enum Loaded {
    /// A whole, valid site (with its warnings).
    Site {
        /// The site.
        site: Site,
        /// Warnings.
        warnings: Vec<Problem>,
    },
    /// Only where the coordinator is.
    Bootstrap(Site),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bootstrap {
    site: String,
    #[serde(default)]
    coordination: Coordination,
    #[serde(default)]
    api: mware_config::ApiConfig,
}

/// Reads and validates `path`. `Err` carries every problem, one per line.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        if v.get("servers").is_none() {
            if let Ok(b) = serde_json::from_value::<Bootstrap>(v) {
                return Ok(Loaded::Bootstrap(Site {
                    site: b.site,
                    coordination: b.coordination,
                    api: b.api,
                    ssh: Default::default(),
                    servers: vec![],
                }));
            }
        }
    }
    let (site, warnings) = check(&text).map_err(|errs| anyhow::anyhow!("{}", lines(&errs)))?;
    Ok(Loaded::Site { site, warnings })
}

/// Validates text into a site; `Err` holds the errors only.
pub fn check(text: &str) -> Result<(Site, Vec<Problem>), Vec<Problem>> {
    match validate(text) {
        Ok(v) => Ok((v.site, v.warnings)),
        Err(all) => Err(all.into_iter().filter(|p| p.severity == Severity::Error).collect()),
    }
}

/// Problems as lines.
pub fn lines(p: &[Problem]) -> String {
    p.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}
