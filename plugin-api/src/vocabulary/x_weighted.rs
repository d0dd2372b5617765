//! A text's length as X counts it (twitter-text 3, "weighted length"): most Latin, Greek,
//! Cyrillic and similar characters weigh 1, others (CJK, most symbols) 2, an emoji sequence 2,
//! every URL 23 whatever its length. Bare domains without `http(s)://` or `www.` count as typed
//! (twitter-text would count those with a known TLD as URLs too). Here because a plugin (which
//! enforces a limit) and a desk (which counts while the agent types) must count alike:
//! [`crate::LengthCounting::length`].

/// What a URL counts, however long.
pub const URL_WEIGHT: usize = 23;

/// Code point ranges of weight 1 (twitter-text v3 config); everything else weighs 2.
const LIGHT: [(u32, u32); 4] = [(0, 4351), (8192, 8205), (8208, 8223), (8242, 8247)];

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2300..=0x23FF | 0x2B00..=0x2BFF)
}

fn is_modifier(c: char) -> bool {
    matches!(c as u32, 0xFE0F | 0x1F3FB..=0x1F3FF | 0x20E3 | 0xE0020..=0xE007F)
}

fn is_regional(c: char) -> bool {
    matches!(c as u32, 0x1F1E6..=0x1F1FF)
}

fn char_weight(c: char) -> usize {
    let code = c as u32;
    if LIGHT
        .iter()
        .any(|&(start, end)| code >= start && code <= end)
    {
        1
    } else {
        2
    }
}

fn is_url(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("www."))
        && lower.len() > 8
}

/// Splits off trailing punctuation that ends a sentence rather than a URL.
fn url_end(word: &str) -> usize {
    word.trim_end_matches(['.', ',', '!', '?', ')', ';', ':', '"', '\''])
        .len()
}

fn text_weight(text: &str) -> usize {
    let mut total = 0;
    let mut previous_emoji = false;
    let mut after_joiner = false;
    let mut open_flag = false;
    for c in text.chars() {
        if previous_emoji && (is_modifier(c) || c == '\u{200D}') {
            after_joiner = c == '\u{200D}';
            continue;
        }
        if after_joiner && is_emoji(c) {
            after_joiner = false;
            previous_emoji = true;
            continue;
        }
        after_joiner = false;
        if is_regional(c) {
            // A flag is two regional indicators: the pair weighs 2.
            if open_flag {
                open_flag = false;
            } else {
                open_flag = true;
                total += 2;
            }
            previous_emoji = true;
            continue;
        }
        open_flag = false;
        previous_emoji = is_emoji(c);
        total += if previous_emoji { 2 } else { char_weight(c) };
    }
    total
}

/// The weighted length of `text`.
pub fn weighted_length(text: &str) -> usize {
    let mut total = 0;
    let mut rest = text;
    while !rest.is_empty() {
        // Whitespace and words alternate; URLs are whole words.
        let start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        total += text_weight(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        if is_url(word) {
            let cut = url_end(word);
            total += URL_WEIGHT + text_weight(&word[cut..]);
        } else {
            total += text_weight(word);
        }
        rest = &rest[end..];
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_counts_one_cjk_two_and_an_emoji_sequence_two() {
        assert_eq!(weighted_length("Hello, world"), 12);
        assert_eq!(weighted_length("你好"), 4);
        assert_eq!(weighted_length("café"), 4);
        assert_eq!(weighted_length("👍"), 2);
        assert_eq!(weighted_length("👍🏽"), 2, "a skin tone joins its emoji");
        assert_eq!(
            weighted_length("👨\u{200D}👩\u{200D}👧"),
            2,
            "a family is one emoji"
        );
        assert_eq!(weighted_length("🇩🇪"), 2, "a flag is one emoji");
    }

    #[test]
    fn every_url_counts_23() {
        assert_eq!(
            weighted_length("https://example.com/a/very/long/path?with=query"),
            23
        );
        assert_eq!(weighted_length("see http://x.co/abc."), 4 + 23 + 1);
        assert_eq!(weighted_length(&"a".repeat(280)), 280);
        assert_eq!(weighted_length(&"あ".repeat(140)), 280);
    }
}
