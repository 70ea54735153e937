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
//! limited to rows whose `domain` equals the URL's entity id, and `store`
//! fills `domain` with it (a different value is refused). Tables without a
//! `domain` column are shared by every entity.

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

/// Quotes an identifier for SQL.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Checks a configured table name and returns it quoted (`"schema"."name"`).
pub fn quote_table(name: &str) -> Result<String, RealtimeError> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && !p.as_bytes()[0].is_ascii_digit()
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 2 || !parts.iter().all(|p| ok_part(p)) {
        return Err(RealtimeError::BadTableName { found: name.into() });
    }
    Ok(parts
        .iter()
        .map(|p| quote_ident(p))
        .collect::<Vec<_>>()
        .join("."))
}

impl Table {
    /// The column of this name, or an error naming the field.
    pub fn column(&self, name: &str) -> Result<&Column, RealtimeError> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| RealtimeError::UnknownColumn {
                table: self.name.clone(),
                found: name.into(),
            })
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

    /// `column OP value` from a field name that may carry an operator.
    fn filter(&mut self, field: &str, value: &str) -> Result<String, RealtimeError> {
        let (name, op) = match field.split_once(' ') {
            Some((n, op)) => (n, op.trim().to_ascii_uppercase()),
            None => (field, "=".to_string()),
        };
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

    fn wheres(
        &mut self,
        entity: &str,
        fields: &[(String, String)],
    ) -> Result<Vec<String>, RealtimeError> {
        let mut w = Vec::new();
        for (k, v) in fields {
            w.push(self.filter(k, v)?);
        }
        if self.table.scoped() {
            let col = self.table.column(DOMAIN_COLUMN)?.clone();
            let v = self.bind(&col, entity);
            w.push(format!("{} = {v}", quote_ident(DOMAIN_COLUMN)));
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
    table
        .columns
        .iter()
        .map(|c| format!("{}::text", quote_ident(&c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn need(ok: bool, expected: &str, found: impl FnOnce() -> String) -> Result<(), RealtimeError> {
    if ok {
        Ok(())
    } else {
        Err(RealtimeError::BadRequest {
            expected: expected.into(),
            found: found(),
        })
    }
}

/// SQL for `single` (one row) or `multi` (rows ordered by the first field's column,
/// as res_config_pgsql does).
pub fn select(
    table: &Table,
    entity: &str,
    op: Op,
    fields: &[(String, String)],
) -> Result<Sql, RealtimeError> {
    if op == Op::Single {
        need(!fields.is_empty(), "at least one field to look up", || {
            "an empty body".into()
        })?;
    }
    let mut b = Builder::new(table);
    let w = b.wheres(entity, fields)?;
    let order = match fields.first() {
        Some((k, _)) => quote_ident(k.split(' ').next().unwrap_or(k)),
        None => quote_ident(
            &table
                .columns
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        ),
    };
    let tail = if op == Op::Single {
        " LIMIT 1".to_string()
    } else {
        format!(" ORDER BY {order}")
    };
    let text = format!(
        "SELECT {} FROM {}{}{tail}",
        select_list(table),
        quote_table(&table.name)?,
        where_clause(&w)
    );
    Ok(Sql {
        text,
        params: b.params,
    })
}

/// SQL for `store`: an INSERT of the body's fields (plus `domain` on scoped tables).
pub fn insert(
    table: &Table,
    entity: &str,
    fields: &[(String, String)],
) -> Result<Sql, RealtimeError> {
    need(!fields.is_empty(), "at least one field to store", || {
        "an empty body".into()
    })?;
    let mut b = Builder::new(table);
    let (mut cols, mut vals) = (Vec::new(), Vec::new());
    let mut has_domain = false;
    for (k, v) in fields {
        let col = table.column(k)?.clone();
        if table.scoped() && col.name == DOMAIN_COLUMN {
            check_domain(entity, v)?;
            has_domain = true;
        }
        cols.push(quote_ident(&col.name));
        vals.push(b.bind(&col, v));
    }
    if table.scoped() && !has_domain {
        let col = table.column(DOMAIN_COLUMN)?.clone();
        cols.push(quote_ident(DOMAIN_COLUMN));
        vals.push(b.bind(&col, entity));
    }
    let text = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote_table(&table.name)?,
        cols.join(", "),
        vals.join(", ")
    );
    Ok(Sql {
        text,
        params: b.params,
    })
}

fn check_domain(entity: &str, v: &str) -> Result<(), RealtimeError> {
    if v == entity {
        Ok(())
    } else {
        Err(RealtimeError::WrongDomain {
            expected: entity.into(),
            found: v.into(),
        })
    }
}

/// SQL for `update`: `lookup` from the query string (`?key=val`), `set` from the body.
pub fn update(
    table: &Table,
    entity: &str,
    lookup: &[(String, String)],
    set: &[(String, String)],
) -> Result<Sql, RealtimeError> {
    need(
        !lookup.is_empty(),
        "a lookup field in the query string (update?key=value)",
        || "none".into(),
    )?;
    need(
        !set.is_empty(),
        "at least one field to set in the body",
        || "an empty body".into(),
    )?;
    let mut b = Builder::new(table);
    let mut sets = Vec::new();
    for (k, v) in set {
        let col = table.column(k)?.clone();
        if table.scoped() && col.name == DOMAIN_COLUMN {
            check_domain(entity, v)?;
        }
        let val = b.bind(&col, v);
        sets.push(format!("{} = {val}", quote_ident(&col.name)));
    }
    let w = b.wheres(entity, lookup)?;
    let text = format!(
        "UPDATE {} SET {}{}",
        quote_table(&table.name)?,
        sets.join(", "),
        where_clause(&w)
    );
    Ok(Sql {
        text,
        params: b.params,
    })
}

/// SQL for `destroy`: every body field is a condition (the first is the key field).
pub fn delete(
    table: &Table,
    entity: &str,
    fields: &[(String, String)],
) -> Result<Sql, RealtimeError> {
    need(!fields.is_empty(), "a key field to destroy by", || {
        "an empty body".into()
    })?;
    let mut b = Builder::new(table);
    let w = b.wheres(entity, fields)?;
    let text = format!(
        "DELETE FROM {}{}",
        quote_table(&table.name)?,
        where_clause(&w)
    );
    Ok(Sql {
        text,
        params: b.params,
    })
}

/// The columns a static-config table must have.
pub const STATIC_COLUMNS: [&str; 6] = [
    "filename",
    "category",
    "cat_metric",
    "var_metric",
    "var_name",
    "var_val",
];

/// SQL for `static?file=NAME`, ordered as res_config_pgsql orders it.
pub fn static_file(table: &Table, entity: &str, file: &str) -> Result<Sql, RealtimeError> {
    for c in STATIC_COLUMNS {
        table.column(c)?;
    }
    let mut b = Builder::new(table);
    let mut w = b.wheres(entity, &[("filename".into(), file.into())])?;
    if table.column("commented").is_ok() {
        w.push("COALESCE(\"commented\"::text, '0') = '0'".into());
    }
    let text = format!(
        "SELECT \"category\"::text, \"cat_metric\"::text, \"var_name\"::text, \"var_val\"::text FROM {}{} \
         ORDER BY \"cat_metric\" DESC, \"var_metric\" ASC, \"category\", \"var_name\"",
        quote_table(&table.name)?,
        where_clause(&w)
    );
    Ok(Sql {
        text,
        params: b.params,
    })
}

/// `require`: the fields (`column=type:size`) that are not columns of the table.
pub fn missing_columns(table: &Table, fields: &[(String, String)]) -> Vec<String> {
    fields
        .iter()
        .filter(|(k, _)| table.column(k).is_err())
        .map(|(k, _)| k.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(scoped: bool) -> Table {
        let mut columns = vec![
            Column {
                name: "id".into(),
                sql_type: "character varying(40)".into(),
                is_string: true,
            },
            Column {
                name: "max_contacts".into(),
                sql_type: "integer".into(),
                is_string: false,
            },
        ];
        if scoped {
            columns.push(Column {
                name: "domain".into(),
                sql_type: "text".into(),
                is_string: true,
            });
        }
        Table {
            name: "ps_aors".into(),
            columns,
        }
    }
    fn f(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.into(), v.into())]
    }

    #[test]
    fn operators_become_sql_and_values_parameters() {
        let s = select(&t(false), "e", Op::Multi, &f("id LIKE", "10%")).unwrap();
        assert_eq!(
            s.text,
            "SELECT \"id\"::text, \"max_contacts\"::text FROM \"ps_aors\" WHERE \"id\"::text LIKE $1::text ESCAPE '\\' ORDER BY \"id\""
        );
        assert_eq!(s.params, vec!["10%"]);
        let s = select(&t(false), "e", Op::Single, &f("max_contacts >=", "2")).unwrap();
        assert!(
            s.text
                .contains("\"max_contacts\" >= CAST(NULLIF($1::text, '') AS integer) LIMIT 1"),
            "{}",
            s.text
        );
    }

    #[test]
    fn injection_in_field_names_is_refused() {
        for bad in [
            "id; DROP TABLE ps_aors",
            "id\" = '' OR \"1",
            "id OR 1=1 --",
            "nosuch",
        ] {
            assert!(
                select(&t(false), "e", Op::Single, &f(bad, "x")).is_err(),
                "{bad}"
            );
            assert!(insert(&t(false), "e", &f(bad, "x")).is_err(), "{bad}");
        }
        assert!(quote_table("ps_aors; drop").is_err());
    }

    #[test]
    fn scoped_tables_are_limited_to_the_entity() {
        let s = delete(&t(true), "t1.example.ru", &f("id", "1001")).unwrap();
        assert_eq!(
            s.text,
            "DELETE FROM \"ps_aors\" WHERE \"id\" = $1::text AND \"domain\" = $2::text"
        );
        assert_eq!(s.params, vec!["1001", "t1.example.ru"]);
        let s = insert(&t(true), "t1", &f("id", "1")).unwrap();
        assert_eq!(s.params, vec!["1", "t1"]);
        assert!(matches!(
            insert(&t(true), "t1", &f("domain", "t2")),
            Err(RealtimeError::WrongDomain { .. })
        ));
    }
}
