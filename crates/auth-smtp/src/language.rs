//! Picking the language of a mail from an HTTP `Accept-Language` value (RFC 9110, section
//! 12.5.4), e.g. `de-CH, de;q=0.9, en;q=0.5`.
//!
//! The value comes from a client, so anything goes: what does not parse is skipped, and only
//! the first [`MAX_RANGES`] entries are looked at, so a huge header costs no more than a
//! short one. (The `accept-language` crate was not used: it keeps entries with `q=0`, which
//! means "not this one", accepts weights above 1 and `NaN`, and reads every entry.)

/// Entries of the header that are looked at; the rest is ignored.
pub(crate) const MAX_RANGES: usize = 32;

/// An entry longer than this is not a language range (RFC 5646 tags in use are far shorter).
const MAX_ENTRY_LEN: usize = 100;

/// Lower-case language tag of English, the language every mail falls back to.
pub(crate) const ENGLISH: &str = "en";

/// One entry of the header: a lower-case range (`de-ch`, `de` or `*`) and its weight in
/// thousandths (`q=0.9` is 900).
#[derive(Debug)]
struct Range {
    tag: String,
    quality: u16,
}

/// Parses the entries the header lists, in order, skipping malformed ones.
fn parse(header: &str) -> Vec<Range> {
    header
        .split(',')
        .take(MAX_RANGES)
        .filter_map(parse_entry)
        .collect()
}

fn parse_entry(entry: &str) -> Option<Range> {
    if entry.len() > MAX_ENTRY_LEN {
        return None;
    }
    let mut parts = entry.split(';');
    let tag = parts.next()?.trim_matches([' ', '\t']);
    if !is_language_range(tag) {
        return None;
    }
    let mut quality = 1000;
    for param in parts {
        let param = param.trim_matches([' ', '\t']);
        if let Some(value) = param
            .strip_prefix("q=")
            .or_else(|| param.strip_prefix("Q="))
        {
            quality = parse_quality(value)?;
            break;
        }
    }
    Some(Range {
        tag: tag.to_ascii_lowercase(),
        quality,
    })
}

/// A language tag that can name a folder of templates: a range whose primary subtag has two
/// or three letters, as ISO 639 codes do (so `english` or `deutsch` is refused as a typo).
pub(crate) fn is_language_tag(tag: &str) -> bool {
    let primary_len = tag.split('-').next().map_or(0, str::len);
    (2..=3).contains(&primary_len) && is_language_range(tag)
}

/// `*`, or 1 to 8 letters followed by any number of `-` and 1 to 8 letters or digits.
fn is_language_range(tag: &str) -> bool {
    if tag == "*" {
        return true;
    }
    let mut subtags = tag.split('-');
    let primary_ok = subtags.next().is_some_and(|primary| {
        (1..=8).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic())
    });
    primary_ok
        && subtags.all(|sub| {
            (1..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// `0`, `0.` and up to three digits, `1`, or `1.` and up to three zeros, in thousandths.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most three digits, checked above.
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The best of `available` (lower-case tags, English among them) for `header`: the entries
/// from the highest weight down (the first listed among equals), each matched exactly or by
/// its primary subtag (`de-CH` takes `de`); `*` takes English. A language listed with `q=0`
/// is never picked (except English, the last resort). English when nothing matches.
pub(crate) fn negotiate<'a>(header: Option<&str>, available: &'a [String]) -> &'a str {
    let english = available
        .iter()
        .find(|l| *l == ENGLISH)
        .map_or(ENGLISH, String::as_str);
    let Some(header) = header else {
        return english;
    };
    let mut ranges = parse(header);
    // Stable: among equal weights the order of the header counts.
    ranges.sort_by_key(|r| std::cmp::Reverse(r.quality));
    let refused = |lang: &str| ranges.iter().any(|r| r.quality == 0 && r.tag == lang);
    for range in ranges.iter().filter(|r| r.quality > 0) {
        if range.tag == "*" {
            return english;
        }
        let primary = range.tag.split('-').next().unwrap_or_default();
        let found = available
            .iter()
            .find(|l| **l == range.tag)
            .or_else(|| available.iter().find(|l| *l == primary));
        if let Some(lang) = found.filter(|l| !refused(l)) {
            return lang;
        }
    }
    english
}

#[cfg(test)]
mod tests {
    use super::*;

    fn available(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|t| (*t).to_owned()).collect()
    }

    fn pick(header: &str, tags: &[&str]) -> String {
        negotiate(Some(header), &available(tags)).to_owned()
    }

    #[test]
    fn weights_parse_exactly() {
        for (raw, expected) in [
            ("0", Some(0)),
            ("0.", Some(0)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.123", Some(123)),
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("1.001", None),
            ("0.1234", None),
            ("2", None),
            ("-0.5", None),
            ("NaN", None),
            ("inf", None),
            ("", None),
            (".5", None),
            ("0.5x", None),
        ] {
            assert_eq!(parse_quality(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn ranges_are_checked() {
        for ok in ["de", "de-CH", "zh-Hant-TW", "*", "i-klingon", "x-private1"] {
            assert!(is_language_range(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            "de-",
            "-de",
            "d e",
            "de_CH",
            "abcdefghi",
            "de-abcdefghi",
            "1de",
            "*-de",
            "dé",
        ] {
            assert!(!is_language_range(bad), "{bad}");
        }
    }

    #[test]
    fn folder_names_are_iso_639_based_tags() {
        for ok in ["en", "de", "pt-br", "zh-Hant", "gsw"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["*", "e", "english", "deutsch", "de_CH", "de-", "x-private"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn the_highest_weight_wins_and_order_breaks_ties() {
        assert_eq!(pick("en;q=0.5, de;q=0.9", &["en", "de"]), "de");
        assert_eq!(pick("de, en", &["en", "de"]), "de");
        assert_eq!(pick("en, de", &["en", "de"]), "en");
        assert_eq!(pick("fr, de;q=0.8, en;q=0.7", &["en", "de"]), "de");
        assert_eq!(
            pick("de;q=0.5, fr;q=0.5, en;q=0.6", &["en", "de", "fr"]),
            "en"
        );
    }

    #[test]
    fn a_region_falls_back_to_its_primary_language() {
        assert_eq!(pick("de-CH, de;q=0.9, en;q=0.5", &["en", "de"]), "de");
        assert_eq!(pick("de-AT", &["en", "de"]), "de");
        assert_eq!(pick("DE-at", &["en", "de"]), "de");
        // An exact match before the primary subtag.
        assert_eq!(pick("de-CH", &["en", "de", "de-ch"]), "de-ch");
        assert_eq!(pick("de", &["en", "de-ch"]), "en");
        assert_eq!(pick("en-GB, de", &["en", "de"]), "en");
    }

    #[test]
    fn wildcard_and_refusals() {
        assert_eq!(pick("*", &["en", "de"]), "en");
        assert_eq!(pick("fr, *;q=0.5, de;q=0.4", &["en", "de"]), "en");
        assert_eq!(pick("de;q=0, de-CH", &["en", "de"]), "en");
        assert_eq!(pick("de;q=0", &["en", "de"]), "en");
        assert_eq!(pick("en;q=0, de;q=0.1", &["en", "de"]), "de");
        // English stays the last resort even when refused.
        assert_eq!(pick("en;q=0", &["en", "de"]), "en");
    }

    #[test]
    fn garbage_and_empty_give_english() {
        for header in [
            "",
            " ",
            ",,,",
            ";q=1",
            "de;q=2",
            "de;q=NaN",
            "de;q=-1",
            "de;q=0.5.5",
            "😀, ü;q=0.9",
            "de\u{0}",
            "q",
            "de de",
        ] {
            assert_eq!(pick(header, &["en", "de"]), "en", "{header:?}");
        }
        assert_eq!(negotiate(None, &available(&["en", "de"])), "en");
        // Other parameters are ignored; a bad entry does not spoil a good one.
        assert_eq!(pick("de;level=1;q=0.8, garbage;q=x", &["en", "de"]), "de");
    }

    #[test]
    fn a_huge_header_is_cut_short() {
        let filler = "xx;q=0.9, ".repeat(1100);
        assert!(filler.len() > 10_000);
        // "de" comes after the entries looked at: ignored.
        assert_eq!(pick(&format!("{filler}de"), &["en", "de"]), "en");
        // Before them: found.
        assert_eq!(pick(&format!("de;q=0.5, {filler}"), &["en", "de"]), "de");
        // One entry of 10 KB: not a language.
        let long = "d".repeat(10_240);
        assert_eq!(pick(&long, &["en", "de"]), "en");
        assert_eq!(pick(&format!("{long}, de"), &["en", "de"]), "de");
    }
}
