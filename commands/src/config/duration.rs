//! Durations written like Prometheus durations: a number and a unit,
//! optionally repeated (`500ms`, `90s`, `15m`, `1h`, `1h30m`).

use std::time::Duration;

/// Example forms for error messages.
pub const DURATION_FORMS: &str = "e.g. 15m, 90s, 1h, 500ms";

/// Units in the order a compound duration must use them, with milliseconds
/// per unit.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `text` into a duration. Returns `None` for anything else: a
/// missing unit, a fraction, a sign, units out of order or an overflow.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total_ms: u64 = 0;
    // Index into UNITS that the next part may use at the earliest, so that
    // `30m1h` and `1h1h` are rejected.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let position = UNITS.iter().position(|(name, _)| *name == unit)?;
        if position < next_unit {
            return None;
        }
        next_unit = position + 1;
        total_ms = total_ms.checked_add(number.checked_mul(UNITS[position].1)?)?;
    }
    Some(Duration::from_millis(total_ms))
}

/// Formats a duration in the largest unit that represents it exactly, so
/// that [`parse_duration`] reads the output back to the same value.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    for (name, per_unit) in UNITS {
        let per_unit = u128::from(per_unit);
        if ms != 0 && ms.is_multiple_of(per_unit) {
            return format!("{}{name}", ms / per_unit);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_reads_each_unit() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    }

    #[test]
    fn parse_duration_rejects_other_forms() {
        for text in [
            "",
            "15",
            "15 minutes",
            "1.5m",
            "-1m",
            "m",
            "30m1h",
            "1h1h",
            "15M",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration(text), None, "{text}");
        }
    }

    #[test]
    fn format_duration_round_trips() {
        for text in ["500ms", "90s", "15m", "1h", "0ms", "1500ms"] {
            let duration = parse_duration(text).unwrap();
            assert_eq!(format_duration(duration), text);
        }
    }
}
