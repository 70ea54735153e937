//! The callmanager's three console panels: calls, conferences (each participant a
//! nested row with Mute, Unmute and Remove) and voice notifications. Each reads the
//! list route of its API on the group's active instance (no `?domain=`: the group's
//! own, every domain it serves); the pointers name fields of those documents
//! (`CallView`, `RoomView`, `NoticeView`) and are checked against real answers by
//! crates/mware/tests/service_panels.rs.

use mware_host::{Action, Column, Nested, Panel};
use serde_json::Value;

/// The panels, in the order the console shows them.
pub(crate) fn panels() -> Vec<Panel> {
    vec![calls(), conferences(), notifications()]
}

fn calls() -> Panel {
    Panel {
        title: "Calls",
        source: crate::api::paths::CALLS,
        rows: "/calls",
        total: "",
        columns: vec![
            Column::text("domain", "/domain"),
            Column::text("from", "/legs/0/party"),
            Column::text("to", "/legs/1/party"),
            Column::text("state", "/state"),
            Column::fmt("since", "/created_ms", "ms_ago"),
            Column::text("ended", "/ended"),
        ],
        actions: vec![Action {
            label: "Hang up",
            method: "DELETE",
            path: "/api/callmanager/v1/calls/{/id}",
            body: Value::Null,
            confirm: "Hang up the call {/id} ({/legs/0/party} with {/legs/1/party})?",
        }],
        empty: "no call",
        nested: None,
    }
}

fn conferences() -> Panel {
    let participant = |label, method, tail: &'static str, confirm| Action { label, method, path: tail, body: Value::Null, confirm };
    Panel {
        title: "Conferences",
        source: crate::conf_api::paths::CONFERENCES,
        rows: "/conferences",
        total: "",
        columns: vec![
            Column::text("domain", "/domain"),
            Column::text("name", "/name"),
            Column::text("in the room", "/joined"),
            Column::text("at most", "/max_participants"),
            Column::fmt("since", "/created_ms", "ms_ago"),
            Column::text("instance", "/instance"),
        ],
        actions: vec![Action {
            label: "End conference",
            method: "DELETE",
            path: "/api/callmanager/v1/conferences/{/id}",
            body: Value::Null,
            confirm: "End the conference {/name} ({/id})? Every participant is hung up.",
        }],
        empty: "no conference",
        nested: Some(Nested {
            rows: "/participants",
            columns: vec![
                Column::text("who", "/party"),
                Column::fmt("state", "/state", "state"),
                Column::text("muted", "/muted"),
                Column::text("talking", "/talking"),
                Column::fmt("since", "/since_ms", "ms_ago"),
                Column::text("why", "/reason"),
            ],
            actions: vec![
                participant(
                    "Mute",
                    "POST",
                    "/api/callmanager/v1/conferences/{/../id}/participants/{/pid}/mute",
                    "Mute {/party} in the conference {/../name}?",
                ),
                participant(
                    "Unmute",
                    "POST",
                    "/api/callmanager/v1/conferences/{/../id}/participants/{/pid}/unmute",
                    "Unmute {/party} in the conference {/../name}?",
                ),
                participant(
                    "Remove",
                    "DELETE",
                    "/api/callmanager/v1/conferences/{/../id}/participants/{/pid}",
                    "Hang up {/party} and remove it from the conference {/../name}?",
                ),
            ],
        }),
    }
}

fn notifications() -> Panel {
    Panel {
        title: "Voice notifications",
        source: crate::notify_api::paths::NOTIFICATIONS,
        rows: "/notifications",
        total: "",
        columns: vec![
            Column::text("domain", "/domain"),
            Column::fmt("state", "/state", "state"),
            Column::text("numbers done", "/numbers_done"),
            Column::text("of", "/numbers_total"),
            Column::fmt("window opens", "/window/not_before_ms", "ms_at"),
            Column::fmt("window closes", "/window/not_after_ms", "ms_at"),
            Column::fmt("created", "/created_ms", "ms_ago"),
            Column::text("instance", "/instance"),
        ],
        actions: vec![Action {
            label: "Cancel",
            method: "DELETE",
            path: "/api/callmanager/v1/notifications/{/id}",
            body: Value::Null,
            confirm: "Cancel the voice notification {/id} ({/numbers_done} of {/numbers_total} numbers done)? Calls under way are hung up.",
        }],
        empty: "no voice notification",
        nested: None,
    }
}
