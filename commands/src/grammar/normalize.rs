//! Clean-up of chat text before parsing. Editors replace ASCII
//! punctuation as users type: with smart punctuation on, macOS and iOS turn
//! `"` into `“”` and `--` into `—`. Some keyboards insert non-breaking
//! spaces, and Slack users format commands as code, in backticks. Each such
//! character is mapped back to the ASCII one it stands for.
//!
//! The mapping covers only punctuation and spacing. Fullwidth and other
//! non-ASCII digits are kept as they are, so the count parser rejects them
//! instead of guessing a number.

/// Returns `text` with quotes, dashes and spaces in ASCII form, invisible
/// characters and backticks removed, whitespace collapsed to single spaces
/// and the ends trimmed.
///
/// Every dash becomes `-`, so `scale synapse –1` (en dash) reads as the
/// relative change `-1`.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        let c = match map_char(c) {
            Mapped::Drop => continue,
            Mapped::Space => {
                pending_space = true;
                continue;
            }
            Mapped::Char(c) => c,
        };
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

enum Mapped {
    Drop,
    Space,
    Char(char),
}

fn map_char(c: char) -> Mapped {
    match c {
        // Zero-width space, non-joiner and joiner, word joiner, byte order
        // mark, soft hyphen, Mongolian vowel separator.
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
        | '\u{180E}' => Mapped::Drop,
        // Direction marks and embeddings, which chat clients insert around
        // text in right-to-left scripts.
        '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Mapped::Drop,
        // Slack wraps code in single or triple backticks; none of the
        // commands uses them.
        '`' => Mapped::Drop,
        // Left and right single quotes, single low-9 and high-reversed-9
        // quotes, prime.
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => Mapped::Char('\''),
        // Left and right double quotes, double low-9 and high-reversed-9
        // quotes, double prime.
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => Mapped::Char('"'),
        // Hyphen, non-breaking hyphen, figure dash, en dash, em dash,
        // horizontal bar, minus sign, small and fullwidth hyphen-minus.
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        | '\u{2212}' | '\u{FE63}' | '\u{FF0D}' => Mapped::Char('-'),
        // Fullwidth plus sign.
        '\u{FF0B}' => Mapped::Char('+'),
        // Every Unicode space, including no-break space (U+00A0), the
        // U+2000..U+200A spaces, narrow no-break space and ideographic space,
        // plus tabs and line breaks.
        c if c.is_whitespace() => Mapped::Space,
        c => Mapped::Char(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_maps_smart_quotes() {
        assert_eq!(
            normalize("reject ab12cd “too risky”"),
            "reject ab12cd \"too risky\""
        );
        assert_eq!(normalize("freeze ‘db’ issue"), "freeze 'db' issue");
    }

    #[test]
    fn normalize_maps_dashes_to_hyphen_minus() {
        for dash in ['\u{2013}', '\u{2014}', '\u{2212}', '\u{2010}'] {
            assert_eq!(
                normalize(&format!("scale synapse {dash}1")),
                "scale synapse -1"
            );
        }
    }

    #[test]
    fn normalize_collapses_unicode_spaces() {
        assert_eq!(
            normalize("\u{00A0} scale\u{2009}\u{2009}synapse\t\n4\u{3000}"),
            "scale synapse 4"
        );
    }

    #[test]
    fn normalize_removes_zero_width_and_backticks() {
        assert_eq!(
            normalize("sca\u{200B}le syn\u{FEFF}apse 4"),
            "scale synapse 4"
        );
        assert_eq!(normalize("```scale synapse 4```"), "scale synapse 4");
        assert_eq!(normalize("`scale` `synapse` 4"), "scale synapse 4");
    }

    #[test]
    fn normalize_removes_direction_marks() {
        assert_eq!(
            normalize("\u{202E}scale synapse\u{200F} 4\u{2069}"),
            "scale synapse 4"
        );
    }

    #[test]
    fn normalize_keeps_fullwidth_digits() {
        assert_eq!(normalize("scale synapse ５"), "scale synapse ５");
    }
}
