//! Pure SQL building: a request's fields become SQL text made only of quoted
//! column names taken from the table's catalog, plus bound parameters.
//!
//! A field name is `column` or `column OPERATOR` (res_config_curl sends the
//! operator inside the name: `id LIKE`, `id !=`). The column must be in the
//! catalog and the operator in a fixed list; anything else is an error and no
//! SQL is produced. Every value travels as a `$n::text` parameter, cast to the
//! column's catalog type where the column is not a string.
//!
//! Tenant scoping: when the table has a `domain` column, every statement is
//! limited to rows whose `domain` is one of the calling entity's domains
//! ([`Scope`]); `store` fills `domain` when the entity has one domain and
//! otherwise needs one of them in the body, and no write may set another.
//! Tables without a `domain` column are not limited here: the service refuses
//! them unless the site marks the family shared.
//!
//! `update` lookups and `destroy` conditions take exact matches only
//! (`column=value`): an operator there (`LIKE`, `!=`, `<` ...) is refused before
//! any SQL is built, since a pattern such as `id LIKE %` would change or delete
//! every row the entity sees. Asterisk never sends one there (sorcery writes by
//! id, `update2` by equality).

use crate::codec::Op;
use crate::error::RealtimeError;

/// One column of a table, from `pg_attribute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// `format_type(atttypid, atttypmod)`, e.g. `character varying(40)`.
    pub sql_type: String,
    /// `pg_type.typcategory == 'S'` (text, varchar, char): compared as text.
    pub is_string: bool,
}

/// A table and its columns, in `attnum` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Name as configured (validated: `name` or `schema.name`).
    pub name: String,
    /// Columns.
    pub columns: Vec<Column>,
}

/// The column that scopes rows to a tenant, when present.
pub const DOMAIN_COLUMN: &str = "domain";

/// The tenant domains a call may see (canonical names, at least one).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The entity's domains (or the one domain of a domain-form URL).
    pub domains: &'a [String],
}

/// Quotes an identifier for SQL.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Checks a configured table name and returns it quoted (`"schema"."name"`).
pub fn quote_table(name: &str) -> Result<String, RealtimeError> {
    let ok_part = |p: &str| !p.is_empty() && !p.as_bytes()[0].is_ascii_digit() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 2 || !parts.iter().all(|p| ok_part(p)) {
        return Err(RealtimeError::BadTableName { found: name.into() });
    }
    Ok(parts.iter().map(|p| quote_ident(p)).collect::<Vec<_>>().join("."))
}

impl Table {
    /// The column of this name, or an error naming the field.
    pub fn column(&self, name: &str) -> Result<&Column, RealtimeError> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| RealtimeError::UnknownColumn { table: self.name.clone(), found: name.into() })
    }
    /// True when rows are scoped by a `domain` column.
    pub fn scoped(&self) -> bool {
        self.columns.iter().any(|c| c.name == DOMAIN_COLUMN)
    }
}

/// SQL text and its parameters (all text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sql {
    /// Statement text with `$n` placeholders.
    pub text: String,
    /// Parameter values, `$1` first.
    pub params: Vec<String>,
}

impl Sql {
    /// The parameters as tokio-postgres takes them.
    pub fn param_refs(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        self.params.iter().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect()
    }
}

struct Builder<'t> {
    table: &'t Table,
    params: Vec<String>,
}

impl<'t> Builder<'t> {
    fn new(table: &'t Table) -> Self {
        Builder { table, params: Vec::new() }
    }

    fn bind(&mut self, col: &Column, value: &str) -> String {
        self.params.push(value.to_string());
        let n = self.params.len();
        if col.is_string {
            format!("${n}::text")
        } else {
            format!("CAST(NULLIF(${n}::text, '') AS {})", col.sql_type)
        }
    }

    /// `column OP value` from a field name that may carry an operator; with `exact`,
    /// only `column` or `column =` is taken.
    fn filter(&mut self, field: &str, value: &str, exact: bool) -> Result<String, RealtimeError> {
        let (name, op) = match field.split_once(' ') {
            Some((n, op)) => (n, op.trim().to_ascii_uppercase()),
            None => (field, "=".to_string()),
        };
        if exact && op != "=" {
            return Err(RealtimeError::InexactMatch { field: field.into() });
        }
        let op = match op.as_str() {
            "=" | "<" | "<=" | ">" | ">=" | "LIKE" | "NOT LIKE" => op,
            "!=" | "<>" => "<>".to_string(),
            _ => return Err(RealtimeError::BadOperator { found: op }),
        };
        let col = self.table.column(name)?.clone();
        let qc = quote_ident(&col.name);
        if op.ends_with("LIKE") {
            self.params.push(value.to_string());
            let n = self.params.len();
            return Ok(format!("{qc}::text {op} ${n}::text ESCAPE '\\'"));
        }
        let v = self.bind(&col, value);
        Ok(format!("{qc} {op} {v}"))
    }

    fn wheres(&mut self, scope: Scope<'_>, fields: &[(String, String)], exact: bool) -> Result<Vec<String>, RealtimeError> {
        let mut w = Vec::new();
        for (k, v) in fields {
            w.push(self.filter(k, v, exact)?);
        }
        if self.table.scoped() {
            let col = self.table.column(DOMAIN_COLUMN)?.clone();
            let list: Vec<String> = scope.domains.iter().map(|d| self.bind(&col, d)).collect();
            w.push(format!("{} IN ({})", quote_ident(DOMAIN_COLUMN), list.join(", ")));
        }
        Ok(w)
    }
}

fn where_clause(w: &[String]) -> String {
    if w.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", w.join(" AND "))
    }
}

fn select_list(table: &Table) -> String {
    table.columns.iter().map(|c| format!("{}::text", quote_ident(&c.name))).collect::<Vec<_>>().join(", ")
}

fn need(ok: bool, expected: &str, found: impl FnOnce() -> String) -> Result<(), RealtimeError> {
    if ok {
        Ok(())
    } else {
        Err(RealtimeError::BadRequest { expected: expected.into(), found: found() })
    }
}

/// SQL for `single` (one row) or `multi` (rows ordered by the first field's column,
/// as res_config_pgsql does).
pub fn select(table: &Table, scope: Scope<'_>, op: Op, fields: &[(String, String)]) -> Result<Sql, RealtimeError> {
    if op == Op::Single {
        need(!fields.is_empty(), "at least one field to look up", || "an empty body".into())?;
    }
    let mut b = Builder::new(table);
    let w = b.wheres(scope, fields, false)?;
    let order = match fields.first() {
        Some((k, _)) => quote_ident(k.split(' ').next().unwrap_or(k)),
        None => quote_ident(&table.columns.first().map(|c| c.name.clone()).unwrap_or_default()),
    };
    let tail = if op == Op::Single { " LIMIT 1".to_string() } else { format!(" ORDER BY {order}") };
    let text = format!("SELECT {} FROM {}{}{tail}", select_list(table), quote_table(&table.name)?, where_clause(&w));
    Ok(Sql { text, params: b.params })
}

/// SQL for `store`: an INSERT of the body's fields (plus `domain` on scoped tables).
pub fn insert(table: &Table, scope: Scope<'_>, fields: &[(String, String)]) -> Result<Sql, RealtimeError> {
    need(!fields.is_empty(), "at least one field to store", || "an empty body".into())?;
    let mut b = Builder::new(table);
    let (mut cols, mut vals) = (Vec::new(), Vec::new());
    let mut has_domain = false;
    for (k, v) in fields {
        let col = table.column(k)?.clone();
        if table.scoped() && col.name == DOMAIN_COLUMN {
            check_domain(scope, v)?;
            has_domain = true;
        }
        cols.push(quote_ident(&col.name));
        vals.push(b.bind(&col, v));
    }
    if table.scoped() && !has_domain {
        let [only] = scope.domains else {
            return Err(RealtimeError::BadRequest {
                expected: format!("a domain field naming one of the entity's domains ({})", scope.domains.join(", ")),
                found: "none (the entity sees several, so the row's tenant must be named)".into(),
            });
        };
        let col = table.column(DOMAIN_COLUMN)?.clone();
        cols.push(quote_ident(DOMAIN_COLUMN));
        vals.push(b.bind(&col, only));
    }
    let text = format!("INSERT INTO {} ({}) VALUES ({})", quote_table(&table.name)?, cols.join(", "), vals.join(", "));
    Ok(Sql { text, params: b.params })
}

fn check_domain(scope: Scope<'_>, v: &str) -> Result<(), RealtimeError> {
    if scope.domains.iter().any(|d| d == v) {
        Ok(())
    } else {
        Err(RealtimeError::WrongDomain { expected: scope.domains.join(", "), found: v.into() })
    }
}

/// SQL for `update`: `lookup` from the query string (`?key=val`), `set` from the body.
pub fn update(table: &Table, scope: Scope<'_>, lookup: &[(String, String)], set: &[(String, String)]) -> Result<Sql, RealtimeError> {
    need(!lookup.is_empty(), "a lookup field in the query string (update?key=value)", || "none".into())?;
    need(!set.is_empty(), "at least one field to set in the body", || "an empty body".into())?;
    let mut b = Builder::new(table);
    let mut sets = Vec::new();
    for (k, v) in set {
        let col = table.column(k)?.clone();
        if table.scoped() && col.name == DOMAIN_COLUMN {
            check_domain(scope, v)?;
        }
        let val = b.bind(&col, v);
        sets.push(format!("{} = {val}", quote_ident(&col.name)));
    }
    let w = b.wheres(scope, lookup, true)?;
    let text = format!("UPDATE {} SET {}{}", quote_table(&table.name)?, sets.join(", "), where_clause(&w));
    Ok(Sql { text, params: b.params })
}

/// SQL for `destroy`: every body field is a condition (the first is the key field).
pub fn delete(table: &Table, scope: Scope<'_>, fields: &[(String, String)]) -> Result<Sql, RealtimeError> {
    need(!fields.is_empty(), "a key field to destroy by", || "an empty body".into())?;
    let mut b = Builder::new(table);
    let w = b.wheres(scope, fields, true)?;
    let text = format!("DELETE FROM {}{}", quote_table(&table.name)?, where_clause(&w));
    Ok(Sql { text, params: b.params })
}

/// The columns a static-config table must have.
pub const STATIC_COLUMNS: [&str; 6] = ["filename", "category", "cat_metric", "var_metric", "var_name", "var_val"];

/// SQL for `static?file=NAME`, ordered as res_config_pgsql orders it.
pub fn static_file(table: &Table, scope: Scope<'_>, file: &str) -> Result<Sql, RealtimeError> {
    for c in STATIC_COLUMNS {
        table.column(c)?;
    }
    let mut b = Builder::new(table);
    let mut w = b.wheres(scope, &[("filename".into(), file.into())], false)?;
    if table.column("commented").is_ok() {
        w.push("COALESCE(\"commented\"::text, '0') = '0'".into());
    }
    let text = format!(
        "SELECT \"category\"::text, \"cat_metric\"::text, \"var_name\"::text, \"var_val\"::text FROM {}{} \
         ORDER BY \"cat_metric\" DESC, \"var_metric\" ASC, \"category\", \"var_name\"",
        quote_table(&table.name)?,
        where_clause(&w)
    );
    Ok(Sql { text, params: b.params })
}

/// `require`: the fields (`column=type:size`) that are not columns of the table.
pub fn missing_columns(table: &Table, fields: &[(String, String)]) -> Vec<String> {
    fields.iter().filter(|(k, _)| table.column(k).is_err()).map(|(k, _)| k.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(scoped: bool) -> Table {
        let mut columns = vec![
            Column { name: "id".into(), sql_type: "character varying(40)".into(), is_string: true },
            Column { name: "max_contacts".into(), sql_type: "integer".into(), is_string: false },
        ];
        if scoped {
            columns.push(Column { name: "domain".into(), sql_type: "text".into(), is_string: true });
        }
        Table { name: "ps_aors".into(), columns }
    }
    fn f(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.into(), v.into())]
    }
    fn sc(d: &[&str]) -> Scope<'static> {
        let v: Vec<String> = d.iter().map(|s| s.to_string()).collect();
        Scope { domains: Vec::leak(v) }
    }

    #[test]
    fn operators_become_sql_and_values_parameters() {
        let s = select(&t(false), sc(&["e"]), Op::Multi, &f("id LIKE", "10%")).unwrap();
        assert_eq!(
            s.text,
            "SELECT \"id\"::text, \"max_contacts\"::text FROM \"ps_aors\" WHERE \"id\"::text LIKE $1::text ESCAPE '\\' ORDER BY \"id\""
        );
        assert_eq!(s.params, vec!["10%"]);
        let s = select(&t(false), sc(&["e"]), Op::Single, &f("max_contacts >=", "2")).unwrap();
        assert!(s.text.contains("\"max_contacts\" >= CAST(NULLIF($1::text, '') AS integer) LIMIT 1"), "{}", s.text);
    }

    #[test]
    fn injection_in_field_names_is_refused() {
        for bad in ["id; DROP TABLE ps_aors", "id\" = '' OR \"1", "id OR 1=1 --", "nosuch"] {
            assert!(select(&t(false), sc(&["e"]), Op::Single, &f(bad, "x")).is_err(), "{bad}");
            assert!(insert(&t(false), sc(&["e"]), &f(bad, "x")).is_err(), "{bad}");
        }
        assert!(quote_table("ps_aors; drop").is_err());
    }

    #[test]
    fn scoped_tables_are_limited_to_the_entity() {
        let s = delete(&t(true), sc(&["t1.example.ru"]), &f("id", "1001")).unwrap();
        assert_eq!(s.text, "DELETE FROM \"ps_aors\" WHERE \"id\" = $1::text AND \"domain\" IN ($2::text)");
        assert_eq!(s.params, vec!["1001", "t1.example.ru"]);
        let two = sc(&["t1", "t3"]);
        let s = select(&t(true), two, Op::Multi, &f("id", "1")).unwrap();
        assert!(s.text.contains("\"domain\" IN ($2::text, $3::text)"), "{}", s.text);
        let s = insert(&t(true), sc(&["t1"]), &f("id", "1")).unwrap();
        assert_eq!(s.params, vec!["1", "t1"]);
        assert!(matches!(insert(&t(true), sc(&["t1"]), &f("domain", "t2")), Err(RealtimeError::WrongDomain { .. })));
        assert!(insert(&t(true), two, &f("id", "1")).is_err(), "several domains: the row's must be named");
        let s = insert(&t(true), two, &[("id".into(), "1".into()), ("domain".into(), "t3".into())]).unwrap();
        assert_eq!(s.params, vec!["1", "t3"]);
    }

    #[test]
    fn writes_take_exact_matches_only() {
        for field in ["id LIKE", "id NOT LIKE", "id !=", "id <>", "id >", "id <="] {
            assert!(matches!(delete(&t(true), sc(&["t1"]), &f(field, "%")), Err(RealtimeError::InexactMatch { .. })), "{field}");
            assert!(
                matches!(update(&t(true), sc(&["t1"]), &f(field, "%"), &f("max_contacts", "1")), Err(RealtimeError::InexactMatch { .. })),
                "{field}"
            );
        }
        assert!(delete(&t(true), sc(&["t1"]), &f("id =", "1")).is_ok());
        assert!(select(&t(true), sc(&["t1"]), Op::Multi, &f("id LIKE", "%")).is_ok(), "reads keep LIKE");
    }
}
