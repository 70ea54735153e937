//! Executes one parsed request against the database and formats the answer
//! exactly as res_config_curl reads it.

use super::access::Caller;
use super::Backend;
use crate::codec::{format_pairs, parse_pairs, Op, Target};
use crate::error::RealtimeError;
use crate::query::{self, Scope};

/// What a successful request answers.
pub(crate) struct Answer {
    /// Response body.
    pub body: String,
    /// True when a read found nothing (empty body).
    pub not_found: bool,
}

fn lines(rows: &[tokio_postgres::Row], names: &[String]) -> String {
    let mut out = String::new();
    for row in rows {
        let values: Vec<Option<String>> = (0..names.len()).map(|i| row.get(i)).collect();
        // NULL and empty values are left out, as res_config_pgsql does.
        let pairs = names
            .iter()
            .zip(values.iter())
            .filter(|(n, _)| !n.is_empty())
            .filter_map(|(n, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (n.as_str(), v)));
        out.push_str(&format_pairs(pairs));
        out.push('\n');
    }
    out
}

fn count(n: u64) -> Answer {
    Answer { body: n.to_string(), not_found: false }
}

/// Runs `target` for `caller` with the URL's query string and the request body.
pub(crate) async fn execute(b: &Backend, caller: &Caller, target: &Target, query_str: &str, body: &str) -> Result<Answer, RealtimeError> {
    let table_name = b.families.get(&target.family).ok_or_else(|| RealtimeError::UnknownFamily {
        known: b.families.keys().cloned().collect::<Vec<_>>().join(", "),
        found: target.family.clone(),
    })?;
    let fields = parse_pairs(body)?;
    let qs = parse_pairs(query_str)?;
    let table = b.pool.table(table_name).await?;
    if !table.scoped() && !b.shared_families.contains(&target.family) {
        return Err(RealtimeError::Unscoped { family: target.family.clone(), table: table.name.clone() });
    }
    let scope = Scope { domains: &caller.domains };
    match target.op {
        Op::Single | Op::Multi => {
            let sql = query::select(&table, scope, target.op, &fields)?;
            let rows = b.pool.query(&sql).await?;
            // On scoped tables `domain` is implied by the URL and Asterisk does not know it: not sent.
            let hide = if table.scoped() { query::DOMAIN_COLUMN } else { "" };
            let names: Vec<String> = table.columns.iter().map(|c| if c.name == hide { String::new() } else { c.name.clone() }).collect();
            let body = lines(&rows, &names);
            Ok(Answer { not_found: body.is_empty(), body })
        }
        Op::Store => Ok(count(b.pool.execute(&query::insert(&table, scope, &fields)?).await?)),
        Op::Update => Ok(count(b.pool.execute(&query::update(&table, scope, &qs, &fields)?).await?)),
        Op::Destroy => Ok(count(b.pool.execute(&query::delete(&table, scope, &fields)?).await?)),
        Op::Require => {
            let missing = query::missing_columns(&table, &fields);
            if missing.is_empty() {
                Ok(Answer { body: "0".into(), not_found: false })
            } else {
                tracing::warn!(table = %table.name, missing = ?missing, "require: columns asked for are missing");
                Ok(Answer { body: "-1".into(), not_found: false })
            }
        }
        Op::Static => {
            let file = qs
                .iter()
                .find(|(k, _)| k == "file")
                .map(|(_, v)| v.clone())
                .ok_or_else(|| RealtimeError::BadRequest { expected: "static?file=NAME".into(), found: format!("{query_str:?}") })?;
            let sql = query::static_file(&table, scope, &file)?;
            let rows = b.pool.query(&sql).await?;
            let names: Vec<String> = ["category", "cat_metric", "var_name", "var_val"].map(String::from).to_vec();
            let mut body = String::new();
            for row in &rows {
                let v: Vec<String> = (0..4).map(|i| row.get::<_, Option<String>>(i).unwrap_or_default()).collect();
                body.push_str(&format_pairs(names.iter().map(String::as_str).zip(v.iter().map(String::as_str))));
                body.push('\n');
            }
            Ok(Answer { not_found: body.is_empty(), body })
        }
    }
}
