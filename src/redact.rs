//! Keeping personal data out of logs, ledgers and messages: masking of identifiers and
//! block keys, and escaping of control characters that came from input files.
//!
//! NIK (the 16-digit national id) and KK (the 16-digit family-card number) are masked the way
//! the reports mask them, `3601********0001`; names and dates inside a block key keep only
//! their first character.

/// `text` with every control character (terminal escapes, NUL, CR) written as `\u{..}`, so
/// that a header or value from a hostile file cannot drive the operator's terminal.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` with every run of 10 or more digits (NIK, KK, phone and card numbers, also when a
/// spreadsheet cut them to 15) masked as the reports mask a NIK: the first four and last
/// four digits kept.
pub fn mask_identifiers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 10 {
            out.push_str(&digits[..4]);
            out.extend(std::iter::repeat_n('*', digits.len() - 8));
            out.push_str(&digits[digits.len() - 4..]);
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    escape_controls(&out)
}

/// A block key as a log line may show it: a run of 10 or more digits masked like a NIK,
/// every other word and number reduced to its first character and stars
/// (`SITI|1980-02-01` becomes `S***|1***-**-**`).
pub fn mask_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        let chars = token.chars().count();
        let digits = token.chars().all(|c| c.is_ascii_digit());
        if chars >= 10 && digits {
            out.push_str(&mask_identifiers(token));
        } else if digits && chars < 4 {
            // A day or month: nothing of it is shown.
            out.extend(std::iter::repeat_n('*', chars));
        } else if let Some(first) = token.chars().next() {
            out.push(first);
            out.extend(std::iter::repeat_n('*', chars - 1));
        }
        token.clear();
    };
    for c in key.chars() {
        if c.is_alphanumeric() {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    escape_controls(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_masked_like_the_reports() {
        assert_eq!(
            mask_identifiers("NIK 3601014101900001 twice: 3601014101900001."),
            "NIK 3601********0001 twice: 3601********0001."
        );
        assert_eq!(
            mask_identifiers("row 12345, 360101410190000"),
            "row 12345, 3601*******0000"
        );
    }

    #[test]
    fn block_keys_keep_no_name_or_date() {
        assert_eq!(mask_key("SITI AMINAH|1980-02-01"), "S*** A*****|1***-**-**");
        assert_eq!(mask_key("3601014101900001"), "3601********0001");
        assert_eq!(mask_key("3601014101900001|BUDI"), "3601********0001|B***");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("NIK\u{1b}[31m"), "NIK\\u{1b}[31m");
        assert_eq!(escape_controls("plain"), "plain");
    }
}
