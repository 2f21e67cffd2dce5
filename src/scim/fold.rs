//! Case folding for case-insensitive attributes. Done in Rust, never in SQL:
//! SQLite's `lower()` folds ASCII only and PostgreSQL's depends on the locale.

use unicode_normalization::UnicodeNormalization;

/// Trimmed, Unicode NFC, lower-cased: the key under which case-insensitive values
/// (userName, emails, displayName) are indexed and compared.
pub fn fold(s: &str) -> String {
    let s = s.trim();
    // ASCII is already in NFC, and its lower case is its ASCII lower case: the
    // common case (every lookup folds its value) skips normalisation.
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.nfc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn folds_case_whitespace_and_composition() {
        assert_eq!(
            fold("  Alice.Smith@Contoso.EXAMPLE "),
            "alice.smith@contoso.example"
        );
        // "é" as e + combining acute and as one code point fold alike.
        assert_eq!(fold("Ame\u{301}lie"), fold("AMÉLIE"));
        assert_eq!(fold("STRASSE"), "strasse");
    }
}
