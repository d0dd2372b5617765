//! A post's length limit on X; the length is counted as X counts it by plugin-api
//! (`LengthCounting::XWeighted`, shared with the desk's counter).

pub use plugin_api::vocabulary::x_weighted::URL_WEIGHT;

/// The largest weighted length of a post.
pub const MAX_WEIGHTED: usize = 280;

/// The weighted length of `text`.
pub fn weighted_length(text: &str) -> usize {
    plugin_api::LengthCounting::XWeighted.length(text)
}
