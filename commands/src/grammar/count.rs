//! Replica counts and changes as typed in chat. Only ASCII decimal digits
//! make a number: anything else is rejected with the reason, so a letter
//! `O` or a fullwidth `５` never turns into a count.

use std::fmt;

use super::ReplicaChange;
use crate::catalog::MAX_REPLICAS;

/// Reason a value is not a replica count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountProblem {
    /// `+` or `-` with nothing after it.
    SignOnly,
    /// `++1`, `+-1`, `--1`.
    ExtraSign,
    /// `+0` or `-0`.
    ZeroChange,
    /// A letter that looks like a digit (`O` for 0, `l` or `I` for 1) in
    /// a value that is otherwise digits.
    LookalikeLetter { letter: char, digit: char },
    /// Any other letter.
    Letter(char),
    /// A digit outside ASCII, such as fullwidth `５`.
    NonAsciiDigit(char),
    /// `3.0`, `2,5`.
    Fraction,
    /// `1e3`.
    Exponent,
    /// `0x5`, `0o7`, `0b101`.
    NotDecimal,
    /// Any other character, such as `=` or `%`.
    Symbol(char),
    /// Above [`MAX_REPLICAS`].
    TooLarge,
    /// A `+k` or `-k` where only an absolute value is accepted.
    Relative,
}

impl fmt::Display for CountProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CountProblem::SignOnly => f.write_str("the sign needs a number right after it"),
            CountProblem::ExtraSign => f.write_str("it has more than one sign"),
            CountProblem::ZeroChange => f.write_str("a change by 0 does nothing"),
            CountProblem::LookalikeLetter { letter, digit } => {
                write!(
                    f,
                    "it contains the letter {letter:?}, not the digit {digit}"
                )
            }
            CountProblem::Letter(c) => write!(f, "it contains the letter {c:?}"),
            CountProblem::NonAsciiDigit(c) => write!(f, "{c:?} is not an ASCII digit"),
            CountProblem::Fraction => f.write_str("replica counts are whole numbers"),
            CountProblem::Exponent => f.write_str("exponent notation is not accepted"),
            CountProblem::NotDecimal => f.write_str("only decimal numbers are accepted"),
            CountProblem::Symbol(c) => write!(f, "it contains {c:?}"),
            CountProblem::TooLarge => {
                write!(f, "it is above the maximum of {MAX_REPLICAS} replicas")
            }
            CountProblem::Relative => f.write_str("an HPA bound is a new value, not a change"),
        }
    }
}

/// Parses `n` (absolute), `+k` or `-k` (relative, k at least 1).
pub(super) fn parse_change(text: &str) -> Result<ReplicaChange, CountProblem> {
    // Chat clients quote values (`"4"`, `'4'` after smart quotes are
    // normalised); the quotes are not part of the count.
    let text = text.trim_matches(['"', '\'']);
    let (sign, body) = split_sign(text);
    let value = parse_digits(body).map_err(|problem| match (sign, problem) {
        (Some(_), CountProblem::Symbol('+' | '-')) => CountProblem::ExtraSign,
        (_, problem) => problem,
    });
    match sign {
        None => value.map(ReplicaChange::To),
        Some(_) if body.is_empty() => Err(CountProblem::SignOnly),
        Some(sign) => match value? {
            0 => Err(CountProblem::ZeroChange),
            k if sign == '+' => Ok(ReplicaChange::Up(k)),
            k => Ok(ReplicaChange::Down(k)),
        },
    }
}

/// Parses an absolute count; a sign is rejected as [`CountProblem::Relative`].
pub(super) fn parse_absolute(text: &str) -> Result<u32, CountProblem> {
    match split_sign(text.trim_matches(['"', '\''])) {
        (None, body) => parse_digits(body),
        (Some(_), _) => Err(CountProblem::Relative),
    }
}

fn split_sign(text: &str) -> (Option<char>, &str) {
    match text.chars().next() {
        Some(sign @ ('+' | '-')) => (Some(sign), &text[1..]),
        _ => (None, text),
    }
}

/// Parses ASCII decimal digits into a count up to [`MAX_REPLICAS`].
/// Leading zeros are accepted (`04` is 4).
fn parse_digits(body: &str) -> Result<u32, CountProblem> {
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        return match body.parse::<u64>() {
            Ok(value) if value <= u64::from(MAX_REPLICAS) => Ok(value as u32),
            // An overflow of u64 is also too large.
            _ => Err(CountProblem::TooLarge),
        };
    }
    Err(classify(body))
}

/// Names the first thing that keeps `body` from being decimal digits.
fn classify(body: &str) -> CountProblem {
    let lower = body.to_ascii_lowercase();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if ["0x", "0o", "0b"]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
        && lower.len() > 2
    {
        return CountProblem::NotDecimal;
    }

    if let Some((whole, fraction)) = lower.split_once(['.', ',']) {
        let digits_or_empty = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if digits_or_empty(whole) && digits_or_empty(fraction) && whole.len() + fraction.len() > 0 {
            return CountProblem::Fraction;
        }
    }

    if let Some((mantissa, exponent)) = lower.split_once('e') {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if all_digits(mantissa) && all_digits(exponent) {
            return CountProblem::Exponent;
        }
    }

    let lookalike = |c: char| match c {
        'O' | 'o' => Some('0'),
        'l' | 'I' => Some('1'),
        _ => None,
    };
    if body
        .chars()
        .all(|c| c.is_ascii_digit() || lookalike(c).is_some())
        && let Some((letter, digit)) = body.chars().find_map(|c| lookalike(c).map(|d| (c, d)))
    {
        return CountProblem::LookalikeLetter { letter, digit };
    }

    for c in body.chars() {
        if c.is_ascii_digit() {
            continue;
        }
        if c.is_numeric() {
            return CountProblem::NonAsciiDigit(c);
        }
        if c.is_alphabetic() {
            return CountProblem::Letter(c);
        }
        return CountProblem::Symbol(c);
    }
    // Only an empty body gets here, and it always follows a sign.
    CountProblem::SignOnly
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_reads_absolute_and_relative() {
        assert_eq!(parse_change("4"), Ok(ReplicaChange::To(4)));
        assert_eq!(parse_change("\"4\""), Ok(ReplicaChange::To(4)));
        assert_eq!(parse_change("'-1'"), Ok(ReplicaChange::Down(1)));
        assert_eq!(parse_change("0"), Ok(ReplicaChange::To(0)));
        assert_eq!(parse_change("04"), Ok(ReplicaChange::To(4)));
        assert_eq!(parse_change("+2"), Ok(ReplicaChange::Up(2)));
        assert_eq!(parse_change("-1"), Ok(ReplicaChange::Down(1)));
        assert_eq!(parse_change("1000"), Ok(ReplicaChange::To(MAX_REPLICAS)));
    }

    #[test]
    fn change_names_each_problem() {
        let cases = [
            (
                "O",
                CountProblem::LookalikeLetter {
                    letter: 'O',
                    digit: '0',
                },
            ),
            (
                "1O",
                CountProblem::LookalikeLetter {
                    letter: 'O',
                    digit: '0',
                },
            ),
            (
                "l2",
                CountProblem::LookalikeLetter {
                    letter: 'l',
                    digit: '1',
                },
            ),
            ("one", CountProblem::Letter('o')),
            ("4a", CountProblem::Letter('a')),
            ("５", CountProblem::NonAsciiDigit('５')),
            ("3.0", CountProblem::Fraction),
            ("2,5", CountProblem::Fraction),
            (".5", CountProblem::Fraction),
            ("1e3", CountProblem::Exponent),
            ("0x5", CountProblem::NotDecimal),
            ("+0", CountProblem::ZeroChange),
            ("-0", CountProblem::ZeroChange),
            ("+", CountProblem::SignOnly),
            ("-", CountProblem::SignOnly),
            ("--1", CountProblem::ExtraSign),
            ("+-1", CountProblem::ExtraSign),
            ("=4", CountProblem::Symbol('=')),
            ("1001", CountProblem::TooLarge),
            ("+1001", CountProblem::TooLarge),
            ("4294967296", CountProblem::TooLarge),
            ("99999999999999999999999", CountProblem::TooLarge),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_change(text), Err(expected), "{text}");
        }
    }

    #[test]
    fn absolute_rejects_sign() {
        assert_eq!(parse_absolute("6"), Ok(6));
        assert_eq!(parse_absolute("+1"), Err(CountProblem::Relative));
        assert_eq!(parse_absolute("-1"), Err(CountProblem::Relative));
        assert_eq!(
            parse_absolute("O"),
            Err(CountProblem::LookalikeLetter {
                letter: 'O',
                digit: '0'
            })
        );
    }
}
