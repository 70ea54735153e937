//! How the operator console shows a service: panel descriptions the page renders
//! generically (a table of rows taken from one of the service's GET documents, with
//! actions per row, and optionally rows nested under each row with their own actions),
//! so a new service shows up in the console without editing it. A service may have
//! several panels ([`crate::Service::panels`]: the callmanager shows calls, conferences
//! and voice notifications).
//!
//! Values are JSON pointers into the document and its rows; the page renders every
//! value as text, never as HTML.

use serde::Serialize;

/// One service's panel.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    /// Title shown above the table.
    pub title: &'static str,
    /// The GET path of the document, served by the active instance of the service's
    /// group (e.g. `/api/v1/pg`); empty: the service's status document (its `detail` in
    /// `/api/v1/status`).
    pub source: &'static str,
    /// JSON pointer to the rows (an array) in the document; empty: the document is one row.
    pub rows: &'static str,
    /// JSON pointer to how many rows the list holds in all, when the document holds one
    /// page of them (the page shows "N of TOTAL"); empty: the rows are the whole list.
    pub total: &'static str,
    /// The columns.
    pub columns: Vec<Column>,
    /// Actions offered on each row.
    pub actions: Vec<Action>,
    /// Shown when there are no rows.
    pub empty: &'static str,
    /// Rows shown under each row (a conference's participants), with their own actions;
    /// none: a flat table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nested: Option<Nested>,
}

/// Rows nested in each row of a [`Panel`] (e.g. the participants of a conference).
#[derive(Debug, Clone, Serialize)]
pub struct Nested {
    /// JSON pointer to the nested rows (an array) in the parent row (`/participants`).
    pub rows: &'static str,
    /// The nested rows' columns (pointers into a nested row).
    pub columns: Vec<Column>,
    /// Actions on each nested row. Their `{/pointer}` placeholders read the nested row;
    /// `{/../pointer}` reads the parent row (`/conferences/{/../id}/participants/{/pid}`).
    pub actions: Vec<Action>,
}

/// A column: its title and the JSON pointer of its value in a row.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// Title.
    pub title: &'static str,
    /// JSON pointer into the row (`/master`, `/servers/0/role`).
    pub value: &'static str,
    /// How to show the value: `text` (default), `ms_ago` (a past time in ms since the
    /// Unix epoch shown as an age), `ms_at` (a time in ms since the Unix epoch, past or
    /// future, shown as `in 5 min` or `12 s ago`), `ms` (a duration), `state` (coloured
    /// by ok/failing words), `count` (how many elements an array holds).
    pub format: &'static str,
}

/// An action on a row: a call the page makes with the operator's token after asking
/// for confirmation, and whose answer (or error) it shows in words.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// Button label.
    pub label: &'static str,
    /// HTTP method (`POST`).
    pub method: &'static str,
    /// Path with `{/pointer}` placeholders filled from the row (URL-encoded).
    pub path: &'static str,
    /// JSON body; strings `"{/pointer}"` are filled from the row, `"{?question}"` asks the
    /// operator.
    pub body: serde_json::Value,
    /// The confirmation question, with `{/pointer}` placeholders.
    pub confirm: &'static str,
}

impl Column {
    /// A text column.
    pub fn text(title: &'static str, value: &'static str) -> Self {
        Column { title, value, format: "text" }
    }
    /// A column with a format (`ms_ago`, `ms_at`, `ms`, `state`, `count`).
    pub fn fmt(title: &'static str, value: &'static str, format: &'static str) -> Self {
        Column { title, value, format }
    }
}
