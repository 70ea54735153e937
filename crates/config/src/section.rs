//! A service's section of the site file, owned by the service.
//!
//! `mware-config` knows the site: servers, roles, groups, order, domains, coordination,
//! api and ssh. Every other key of a role is a *section* (`alarms`, `backup_controller`,
//! `sip` …) that a service crate defines: its type (serde, with `///` docs and the
//! seed's defaults, which is also its JSON Schema) and one [`SectionConfig::check`] that
//! walks the raw JSON and reports every problem with its path. The binary passes the list
//! of sections ([`Section`], one per registered type) to [`crate::validate`] and
//! [`crate::schema`]; the file is checked by those walkers, then parsed once into the
//! typed values that [`crate::Role::section`] hands to the service.
//!
//! A key no registered section claims is refused like any unknown key.

use crate::validate::walk::{join, Check, Problem, Severity};
use crate::DomainTree;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;

/// A service's section of a role: the type, its key and its checks.
pub trait SectionConfig: Sized + Clone + Send + Sync + DeserializeOwned + Serialize + schemars::JsonSchema + 'static {
    /// The role key of the section, e.g. `"alarms"`.
    const KEY: &'static str;

    /// The value when the key is absent or `null`: `None` means the service is off.
    fn absent() -> Option<Self> {
        None
    }

    /// Walks the raw JSON of the section (`at` is its own path, e.g.
    /// `servers[0].roles[1].alarms`) and reports every problem to `cx`, errors with
    /// [`Check::report`] and warnings with [`Check::warn`]. What passes must parse.
    fn check(cx: &mut Check, v: &Value, at: &str, site: &SiteInfo);

    /// Checks across the groups of the site (for example: one entity listed by one group
    /// only). Runs once per file, after every instance's [`SectionConfig::check`].
    fn check_site(_cx: &mut Check, _site: &SiteInfo) {}
}

/// The registry's view of one section type (object safe); made by [`section`].
pub trait Section: Send + Sync {
    /// The role key.
    fn key(&self) -> &'static str;
    /// Checks one instance's raw section.
    fn check(&self, cx: &mut Check, v: &Value, at: &str, site: &SiteInfo);
    /// Checks across the site.
    fn check_site(&self, cx: &mut Check, site: &SiteInfo);
    /// Parses a checked value (`None`: absent or null).
    fn parse(&self, v: Option<&Value>, at: &str) -> Result<Option<Parsed>, Problem>;
    /// The section's JSON Schema, its definitions added to `gen`.
    fn schema(&self, gen: &mut schemars::SchemaGenerator) -> schemars::Schema;
}

/// One section type as a [`Section`], for the list of sections the binary keeps.
pub fn section<T: SectionConfig>() -> &'static dyn Section {
    // A zero-sized value: leaking it allocates nothing.
    Box::leak(Box::new(Def::<T>(PhantomData)))
}

struct Def<T>(PhantomData<fn() -> T>);

impl<T: SectionConfig> Section for Def<T> {
    fn key(&self) -> &'static str {
        T::KEY
    }
    fn check(&self, cx: &mut Check, v: &Value, at: &str, site: &SiteInfo) {
        T::check(cx, v, at, site)
    }
    fn check_site(&self, cx: &mut Check, site: &SiteInfo) {
        T::check_site(cx, site)
    }
    fn parse(&self, v: Option<&Value>, at: &str) -> Result<Option<Parsed>, Problem> {
        let typed = match v.filter(|v| !v.is_null()) {
            None => T::absent(),
            Some(v) => Some(serde_json::from_value::<T>(v.clone()).map_err(|e| Problem {
                path: at.to_string(),
                message: format!("expected a section the model accepts, found a problem the checks missed: {e}"),
                severity: Severity::Error,
            })?),
        };
        Ok(typed.map(Parsed::new))
    }
    fn schema(&self, gen: &mut schemars::SchemaGenerator) -> schemars::Schema {
        gen.subschema_for::<T>()
    }
}

/// A parsed section: the typed value, and how it is shown (secrets as `***`).
#[derive(Clone)]
pub struct Parsed {
    value: Arc<dyn Any + Send + Sync>,
    shown: Value,
}

impl Parsed {
    fn new<T: SectionConfig>(t: T) -> Self {
        let shown = serde_json::to_value(&t).unwrap_or(Value::Null);
        Parsed { value: Arc::new(t), shown }
    }
}

/// The service sections of a role: as written, and parsed by their sections.
#[derive(Clone, Default)]
pub struct Sections {
    raw: Map<String, Value>,
    parsed: BTreeMap<&'static str, Parsed>,
}

impl Sections {
    /// The section of type `T`: parsed when the file was validated, or parsed now from
    /// the raw value (a role built without validation, as in tests). `None` when the
    /// section is off (absent, and `T::absent()` is `None`) or does not parse.
    pub fn get<T: SectionConfig>(&self) -> Option<T> {
        if let Some(p) = self.parsed.get(T::KEY) {
            if let Some(t) = p.value.downcast_ref::<T>() {
                return Some(t.clone());
            }
        }
        match self.raw.get(T::KEY).filter(|v| !v.is_null()) {
            None => T::absent(),
            Some(v) => serde_json::from_value(v.clone()).ok(),
        }
    }

    /// The raw value of a section key, as written.
    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.raw.get(key)
    }

    /// The keys present in the file.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.raw.keys().map(String::as_str)
    }

    /// Sets a section's value (tests and tools that build a site in code).
    pub fn set<T: SectionConfig>(&mut self, value: Option<T>) {
        self.parsed.remove(T::KEY);
        match value {
            Some(v) => {
                // Stored typed, so the value keeps its secrets; `raw` keeps a redacted form
                // for display only.
                let p = Parsed::new(v);
                self.raw.insert(T::KEY.to_string(), p.shown.clone());
                self.parsed.insert(T::KEY, p);
            }
            None => {
                self.raw.remove(T::KEY);
            }
        }
    }

    /// Parses every registered section; the problems name their paths.
    pub(crate) fn parse_all(&mut self, sections: &[&'static dyn Section], at: &str) -> Vec<Problem> {
        let mut out = vec![];
        for s in sections {
            match s.parse(self.raw.get(s.key()), &join(at, s.key())) {
                Ok(Some(p)) => {
                    self.parsed.insert(s.key(), p);
                }
                Ok(None) => {}
                Err(e) => out.push(e),
            }
        }
        out
    }

    /// What the sections look like to a reader: parsed ones typed (secrets `***`), the
    /// rest redacted.
    fn shown(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, v) in &self.raw {
            let shown = match self.parsed.get(k.as_str()) {
                Some(p) => p.shown.clone(),
                None => {
                    let mut v = v.clone();
                    crate::redact(&mut v);
                    v
                }
            };
            out.insert(k.clone(), shown);
        }
        out
    }
}

impl PartialEq for Sections {
    fn eq(&self, other: &Self) -> bool {
        self.shown() == other.shown() && self.raw == other.raw
    }
}

impl fmt::Debug for Sections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Value::Object(self.shown()))
    }
}

impl Serialize for Sections {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.shown().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Sections {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Sections { raw: Map::deserialize(d)?, parsed: BTreeMap::new() })
    }
}

impl schemars::JsonSchema for Sections {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Sections".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Filled in by `crate::schema` from the registered sections.
        schemars::json_schema!({ "type": "object" })
    }
}

/// What a section's checks may know of the site beyond their own section.
pub struct SiteInfo<'a> {
    pub(crate) root: &'a Value,
    pub(crate) walked: &'a crate::validate::sections::Walked,
    /// The instance being checked (index into `walked.insts`), if any.
    pub(crate) inst: Option<usize>,
    pub(crate) tree: Option<DomainTree>,
}

/// One group of the site as the checks see it: its first member speaks for it (the
/// validator makes every member carry the same sections).
pub struct GroupView<'a> {
    /// Group number.
    pub group: u32,
    /// JSON path of its first member (`servers[0].roles[1]`).
    pub path: &'a str,
    /// Its `include_domains`, canonical.
    pub domains: Vec<&'a str>,
    /// Its service sections, raw.
    pub sections: &'a Map<String, Value>,
}

impl<'a> SiteInfo<'a> {
    /// `api.request_timeout_ms` as the file sets it (or its default).
    pub fn request_timeout_ms(&self) -> u64 {
        self.root
            .pointer("/api/request_timeout_ms")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| crate::ApiConfig::default().request_timeout_ms)
    }

    /// The interface aliases of the checked instance's server with their addresses.
    pub fn ifaces(&self) -> BTreeMap<String, IpAddr> {
        self.inst.and_then(|i| self.walked.servers.get(self.walked.insts[i].server)).map(|s| s.ifaces.clone()).unwrap_or_default()
    }

    /// The alias names of the checked instance's server, including those whose address
    /// did not parse (already reported by the site's own checks).
    pub fn iface_names(&self) -> Vec<String> {
        let Some(i) = self.inst else { return vec![] };
        let p = &self.walked.insts[i].path;
        let server = p.split(".roles").next().unwrap_or_default();
        let idx: Option<usize> = server.strip_prefix("servers[").and_then(|s| s.strip_suffix(']')).and_then(|s| s.parse().ok());
        idx.and_then(|n| self.root.get("servers")?.get(n)?.get("ifaces")?.as_object().map(|m| m.keys().cloned().collect()))
            .unwrap_or_default()
    }

    /// The address of the checked instance (its `iface`), when it resolves.
    pub fn addr(&self) -> Option<IpAddr> {
        self.inst.and_then(|i| self.walked.insts[i].addr)
    }

    /// Every group, in number order, with its first member in file order.
    pub fn groups(&self) -> Vec<GroupView<'a>> {
        let mut seen = BTreeMap::new();
        for i in &self.walked.insts {
            if let Some(g) = i.group {
                seen.entry(g).or_insert(i);
            }
        }
        seen.into_iter()
            .map(|(g, i)| GroupView {
                group: g,
                path: &i.path,
                domains: i.domains.iter().map(|(_, d)| d.as_str()).collect(),
                sections: &i.sections,
            })
            .collect()
    }

    /// The domain tree, when every instance's group and domains are valid.
    pub fn tree(&self) -> Option<&DomainTree> {
        self.tree.as_ref()
    }
}
