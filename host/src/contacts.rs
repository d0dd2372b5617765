//! Contact addresses as the directory keys them, and recognition of phone numbers and email
//! addresses inside message text (so the desktop can offer to call or write to them).
//! Pure functions; the directory itself lives in `storage::history`.

use plugin_api::Address;

/// The directory key of an address: `kind:normalised value` (phone numbers keep digits and a
/// leading `+`; email addresses are lower-cased), or `None` when nothing is left.
pub fn address_key(address: &Address) -> Option<String> {
    let value = match address.kind.as_str() {
        Address::PHONE => {
            let trimmed = address.value.trim();
            let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return None;
            }
            if trimmed.starts_with('+') {
                format!("+{digits}")
            } else {
                digits
            }
        }
        Address::EMAIL => address.value.trim().to_lowercase(),
        _ => address.value.trim().to_string(),
    };
    (!value.is_empty()).then(|| format!("{}:{value}", address.kind))
}

/// Email addresses, then phone numbers, written in a message, each in order of appearance.
///
/// An email address is `local@domain.tld` (letters, digits, `.`, `_`, `%`, `+`, `-`). A phone
/// number is a run of at least 7 digits, optionally led by `+`, that may contain spaces, dots,
/// dashes and parentheses between digits (a lone date or an order number of fewer than 7 digits is
/// not taken, nor is an ISO date such as 2026-11-24).
pub fn recognise_addresses(text: &str) -> Vec<Address> {
    let mut found = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || ",;<>\"'[]".contains(c)) {
        let word = word.trim_matches(|c: char| ".:!?()".contains(c));
        if let Some((local, domain)) = word.split_once('@') {
            let local_ok = !local.is_empty()
                && local
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c));
            let domain_ok = domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
            if local_ok && domain_ok {
                found.push(Address::email(word));
            }
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let digit = |k: usize| chars.get(k).is_some_and(char::is_ascii_digit);
    let separator = |k: usize| chars.get(k).is_some_and(|c| " .-()".contains(*c));
    let mut i = 0;
    while i < chars.len() {
        let starts = digit(i) || ((chars[i] == '+' || chars[i] == '(') && digit(i + 1));
        let preceded_by_word =
            i > 0 && (chars[i - 1].is_alphanumeric() || "@.+-/".contains(chars[i - 1]));
        if !starts || preceded_by_word {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut last_digit = i;
        while j < chars.len() {
            if digit(j) {
                last_digit = j;
                j += 1;
                continue;
            }
            // Up to two separators in a row, then a digit: still the same number.
            let mut k = j;
            while separator(k) && k - j < 2 {
                k += 1;
            }
            if k > j && digit(k) {
                j = k;
            } else {
                break;
            }
        }
        let candidate: String = chars[i..=last_digit].iter().collect();
        let digits = candidate.chars().filter(char::is_ascii_digit).count();
        let followed_by_word = chars
            .get(last_digit + 1)
            .is_some_and(|c| c.is_alphanumeric() || *c == '@');
        if (7..=15).contains(&digits) && !followed_by_word && !looks_like_date(&candidate) {
            found.push(Address::phone(candidate));
        }
        i = last_digit + 1;
    }
    found
}

/// `YYYY-MM-DD`.
fn looks_like_date(candidate: &str) -> bool {
    let b = candidate.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && candidate
            .replace('-', "")
            .bytes()
            .all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_and_email_addresses_in_a_chat_message_are_recognised() {
        let text = "Call me on +44 20 7946 0958 or (555) 010-0199, or write to Jo.Bloggs@Example.com. \
                    Order 12345 from 2026-11-24.";
        let found = recognise_addresses(text);
        assert_eq!(
            found,
            vec![
                Address::email("Jo.Bloggs@Example.com"),
                Address::phone("+44 20 7946 0958"),
                Address::phone("(555) 010-0199"),
            ]
        );
    }

    #[test]
    fn addresses_are_keyed_so_that_spellings_of_the_same_one_match() {
        assert_eq!(
            address_key(&Address::phone("+44 (20) 7946-0958")),
            Some("phone:+442079460958".into())
        );
        assert_eq!(
            address_key(&Address::email(" Jo@Example.COM ")),
            Some("email:jo@example.com".into())
        );
        assert_eq!(address_key(&Address::phone("n/a")), None);
    }
}
