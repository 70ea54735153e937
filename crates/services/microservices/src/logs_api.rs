//! `GET /api/v1/logs`: the site's log, by default of every member of the asking
//! instance's group (`scope=group`, see [`crate::group`]), or of the instance asked only
//! (`scope=instance`, what members ask each other). Parameters: `process`, `instance`
//! (comma-separated members), `since`, `until`, `after` (a cursor `m10:123,m20:7`, or a
//! bare seq of the instance asked), `first` (the first `limit` matches, not the last: the
//! default with `after`, so a follower reads forward), `q`, `level`, `limit`, `format`.
//! A member that does not answer is named: in the `x-mware-missing` header of JSON lines,
//! in `missing` of `format=json`.

use crate::group::{self, Ask, Member};
use crate::handle::MicroService;
use crate::logstore::Query;
use axum::extract::{Query as Params, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mware_host::ApiError;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// A 400 naming the field (boxed: a `Response` is too large to pass around in `Err`).
pub(crate) fn bad(field: &str, msg: String) -> Box<Response> {
    Box::new(ApiError::new(StatusCode::BAD_REQUEST, msg).field(field).into_response())
}

const KEYS: &[&str] = &["process", "instance", "scope", "since", "until", "after", "first", "q", "level", "limit", "format"];

/// A parsed request.
struct Req {
    query: Query,
    json: bool,
    group: bool,
    only: Option<Vec<String>>,
    cursor: BTreeMap<String, u64>,
    /// The parameters passed on to each member (without the per-member ones).
    common: Vec<(String, String)>,
}

/// A time: ms since the epoch, or RFC 3339.
fn time(field: &str, v: &str) -> Result<u64, Box<Response>> {
    if let Ok(ms) = v.parse::<u64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(v).map(|t| t.timestamp_millis().max(0) as u64).map_err(|_| {
        bad(
            field,
            format!("{field}: expected ms since the Unix epoch or an RFC 3339 time, found {:?}", v.chars().take(64).collect::<String>()),
        )
    })
}

/// Parses the query string (`me`: the instance asked, for a bare `after`).
fn parse(me: &str, p: &HashMap<String, String>) -> Result<Req, Box<Response>> {
    if let Some(k) = p.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(bad(
            k,
            format!("expected one of the parameters {}, found {:?}", KEYS.join(", "), k.chars().take(64).collect::<String>()),
        ));
    }
    let mut q =
        Query { limit: 1000, process: p.get("process").cloned(), level: p.get("level").map(|l| l.to_lowercase()), ..Default::default() };
    if let Some(v) = p.get("since") {
        q.since_ms = Some(time("since", v)?);
    }
    if let Some(v) = p.get("until") {
        q.until_ms = Some(time("until", v)?);
    }
    let cursor = match p.get("after") {
        Some(v) => group::cursor(me, v).map_err(|e| bad("after", format!("after: expected a seq or INSTANCE:SEQ,…, found {e}")))?,
        None => BTreeMap::new(),
    };
    if let Some(v) = p.get("limit") {
        q.limit = v
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| bad("limit", format!("limit: expected an integer from 1 to 10000, found {v:?}")))?;
    }
    if let Some(v) = p.get("q") {
        let re = regex::RegexBuilder::new(v)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| bad("q", format!("q: expected a regular expression, found one that does not parse: {e}")))?;
        q.q = Some(re);
    }
    // Following (a cursor) reads forward: the first `limit` lines after it.
    q.first = match p.get("first").map(String::as_str) {
        None => !cursor.is_empty(),
        Some("true") => true,
        Some("false") => false,
        Some(v) => return Err(bad("first", format!("first: expected true or false, found {:?}", v.chars().take(16).collect::<String>()))),
    };
    let json = match p.get("format").map(String::as_str) {
        None | Some("jsonl") => false,
        Some("json") => true,
        Some(f) => return Err(bad("format", format!("format: expected \"jsonl\" or \"json\", found {f:?}"))),
    };
    let group = match p.get("scope").map(String::as_str) {
        None | Some("group") => true,
        Some("instance") => false,
        Some(s) => return Err(bad("scope", format!("scope: expected \"group\" or \"instance\", found {s:?}"))),
    };
    let only = p.get("instance").map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect());
    let common = p
        .iter()
        .filter(|(k, _)| ["process", "until", "q", "level", "limit"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Req { query: q, json, group, only, cursor, common })
}

/// The members to ask, each with its own cursor or `since`.
fn asks(me: &str, members: Vec<Member>, req: &Req, since: Option<&String>) -> Result<Vec<Ask>, Box<Response>> {
    let names: Vec<&str> = members.iter().map(|m| m.instance.as_str()).collect();
    if let Some(bad_name) = req.only.iter().flatten().find(|n| !names.contains(&n.as_str())) {
        return Err(bad(
            "instance",
            format!(
                "instance: expected members of this group ({}), found {:?}",
                names.join(", "),
                bad_name.chars().take(64).collect::<String>()
            ),
        ));
    }
    let chosen =
        members
            .into_iter()
            .filter(|m| if req.group { req.only.as_ref().is_none_or(|o| o.contains(&m.instance)) } else { m.instance == me });
    Ok(chosen
        .map(|member| {
            let mut query = req.query.clone();
            let mut params = req.common.clone();
            params.push(("first".into(), query.first.to_string()));
            match req.cursor.get(&member.instance) {
                Some(seq) => {
                    query.after_seq = Some(*seq);
                    query.since_ms = None;
                    params.push(("after".into(), seq.to_string()));
                }
                None => params.extend(since.map(|s| ("since".to_string(), s.clone()))),
            }
            Ask { member, query, params }
        })
        .collect())
}

fn unavailable(msg: String) -> Response {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg).into_response()
}

/// The site's log of the group's members (or of this instance), oldest first: the last
/// `limit` matching lines, merged by time.
#[utoipa::path(get, path = "/api/v1/logs", tag = "microservices",
    params(("process" = Option<String>, Query, description = "one process"), ("instance" = Option<String>, Query, description = "these members only (comma-separated)"),
        ("scope" = Option<String>, Query, description = "`group` (default: every member, each asked within 2 s) or `instance` (the one asked)"),
        ("since" = Option<String>, Query, description = "ms or RFC 3339"), ("until" = Option<String>, Query, description = "ms or RFC 3339"),
        ("after" = Option<String>, Query, description = "lines after this cursor, `m10:123,m20:7` (follow; members not named: from `since`), or a bare seq of the instance asked"),
        ("first" = Option<bool>, Query, description = "the first `limit` matches instead of the last (default: true with `after`, else false)"),
        ("q" = Option<String>, Query, description = "regular expression on the line"), ("level" = Option<String>, Query, description = "level of JSON lines"),
        ("limit" = Option<u32>, Query, description = "the last N matches, 1..10000 (default 1000)"), ("format" = Option<String>, Query, description = "`jsonl` (default) or `json`")),
    responses((status = 200, description = "JSON lines `{seq, ts_ms, instance, process, stream, line, fields?, level?}` (header `x-mware-missing`: members that did not answer), or with `format=json` `{lines, lost, members: [{instance, api}], missing: [{instance, error}]}`"),
        (status = 400, description = "a parameter that does not parse (named)", body = mware_host::ApiError),
        (status = 503, description = "`scope=instance`: the site log is not kept on this instance", body = mware_host::ApiError)))]
pub(crate) async fn logs(State(svc): State<MicroService>, Params(p): Params<HashMap<String, String>>) -> Response {
    let Some((me, site)) = svc.inner.env.get().map(|e| (e.instance.clone(), e.site.borrow().clone())) else {
        return unavailable("the site log is not kept on this instance (the service is not attached)".into());
    };
    let req = match parse(&me, &p) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let members = group::members(&site, &me);
    let asks = match asks(&me, members.clone(), &req, p.get("since")) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let g = group::gather(&me, svc.store().cloned(), asks, req.query.limit, req.query.first).await;
    if let (false, Some(m)) = (req.group, g.missing.first()) {
        return unavailable(format!("{}: {}", m.instance, m.error));
    }
    if req.json {
        return Json(json!({"lines": g.lines, "lost": g.lost, "members": members, "missing": g.missing})).into_response();
    }
    let mut body = String::new();
    for l in &g.lines {
        body.push_str(&serde_json::to_string(l).unwrap_or_default());
        body.push('\n');
    }
    let mut resp = ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    if !g.missing.is_empty() {
        let names: Vec<&str> = g.missing.iter().map(|m| m.instance.as_str()).collect();
        if let Ok(v) = HeaderValue::from_str(&names.join(",")) {
            resp.headers_mut().insert("x-mware-missing", v);
        }
    }
    resp
}
