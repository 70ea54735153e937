//! The text of the site's state that `mware status` prints first.

use mware_client::text::{ago, local};
use serde_json::Value;

/// The site's state as `mware status` prints it: one line with the state, since when and
/// the summary, then every item that is not ok.
pub fn site_state_text(v: &Value) -> String {
    let state = v["state"].as_str().unwrap_or("?");
    let since = v["since_ms"].as_u64().map(|m| format!(" since {} ({})", local(Some(m)), ago(Some(m)))).unwrap_or_default();
    let mut out =
        format!("site {}: {}{since}\n  {}\n", v["site"].as_str().unwrap_or("?"), state.to_uppercase(), v["summary"].as_str().unwrap_or(""));
    for i in v["items"].as_array().into_iter().flatten().filter(|i| i["state"] != "ok") {
        let what = if i["kind"] == "group" {
            format!("group {}", i["name"].as_str().unwrap_or("?"))
        } else {
            format!("{} {} (group {})", i["kind"].as_str().unwrap_or("?"), i["name"].as_str().unwrap_or("?"), i["group"])
        };
        let since = i["since_ms"].as_u64().map(|m| format!(" for {}", ago(Some(m)))).unwrap_or_default();
        out += &format!("  {:<8} {what}{since}: {}\n", i["state"].as_str().unwrap_or("?"), i["reason"].as_str().unwrap_or(""));
    }
    out
}
