//! The files this plugin serves, compiled in: rrweb (from `web/node_modules`, put there by
//! `npm ci`; see build.rs) and our own customer script and viewer page. Nothing from a CDN.

/// rrweb's browser build (UMD: a global `rrweb`).
pub const RRWEB_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rrweb.js"));
/// rrweb's replayer style sheet.
pub const RRWEB_CSS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rrweb.css"));
/// The rrweb version compiled in (empty when missing).
pub const RRWEB_VERSION: &str = env!("COBROWSE_RRWEB_VERSION");
/// Why rrweb is missing (empty when it is here).
pub const MISSING: &str = env!("COBROWSE_MISSING_ASSETS");
/// The script a company's pages include: the banner, the session code, recording with masking.
pub const CUSTOMER_JS: &str = include_str!("customer.js");
/// The agent's viewer.
pub const VIEWER_HTML: &str = include_str!("viewer.html");
/// The viewer's script.
pub const VIEWER_JS: &str = include_str!("viewer.js");
/// The viewer's style sheet.
pub const VIEWER_CSS: &str = include_str!("viewer.css");

/// Why the channel cannot work with this build, if it cannot.
pub fn unavailable() -> Option<&'static str> {
    why_unavailable(RRWEB_JS, MISSING)
}

/// The decision: rrweb must be compiled in; the build script says why when it is not.
fn why_unavailable(rrweb: &[u8], missing: &'static str) -> Option<&'static str> {
    match (rrweb.is_empty(), missing.is_empty()) {
        (false, true) => None,
        (_, false) => Some(missing),
        (true, true) => Some("rrweb is missing from this build"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_rrweb_the_channel_says_why_and_this_build_has_it() {
        assert_eq!(
            why_unavailable(b"", "npm ci has not run"),
            Some("npm ci has not run")
        );
        assert_eq!(
            why_unavailable(b"", ""),
            Some("rrweb is missing from this build")
        );
        assert_eq!(why_unavailable(b"(function(){})", ""), None);
        assert_eq!(unavailable(), None, "{MISSING}");
        assert!(!RRWEB_VERSION.is_empty() && CUSTOMER_JS.contains("maskInputFn"));
    }
}
