//! Kubernetes resource quantities (`500m`, `2`, `1Gi`, `22244Ki`, `1e3`):
//! parsing into CPU millicores and memory bytes, and the forms
//! metrics-server writes back.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "invalid quantity \"{0}\": expected a number with an optional suffix such as 500m, 2, 1Gi or 512Mi"
)]
pub struct InvalidQuantity(pub String);

/// Parses a quantity into its value in base units (cores, bytes).
pub fn parse(text: &str) -> Result<f64, InvalidQuantity> {
    let invalid = || InvalidQuantity(text.to_string());
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let trimmed = text.trim();
    let (number, multiplier) = SUFFIXES
        .iter()
        .find_map(|(suffix, multiplier)| trimmed.strip_suffix(suffix).map(|n| (n, *multiplier)))
        .unwrap_or((trimmed, 1.0));
    let value: f64 = number.parse().map_err(|_| invalid())?;
    if !value.is_finite() || value < 0.0 {
        return Err(invalid());
    }
    Ok(value * multiplier)
}

/// CPU in millicores, rounded up as the API server rounds sub-milli values.
pub fn cpu_millis(text: &str) -> Result<i64, InvalidQuantity> {
    Ok((parse(text)? * 1000.0 - 1e-9).ceil().max(0.0) as i64)
}

/// Memory in bytes, rounded up.
pub fn memory_bytes(text: &str) -> Result<i64, InvalidQuantity> {
    Ok((parse(text)? - 1e-9).ceil().max(0.0) as i64)
}

/// CPU millicores from a JSON quantity (a string or a plain number); zero
/// when absent or invalid, as a missing request counts for the scheduler.
pub fn cpu_millis_of(value: &Value) -> i64 {
    quantity_text(value)
        .and_then(|t| cpu_millis(&t).ok())
        .unwrap_or(0)
}

/// Memory bytes from a JSON quantity; zero when absent or invalid.
pub fn memory_bytes_of(value: &Value) -> i64 {
    quantity_text(value)
        .and_then(|t| memory_bytes(&t).ok())
        .unwrap_or(0)
}

fn quantity_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// CPU in the nanocore form metrics-server reports (`9559630n`).
pub fn format_nanocores(nanocores: i64) -> String {
    format!("{nanocores}n")
}

/// Memory in the kibibyte form metrics-server reports (`22244Ki`).
pub fn format_kibibytes(bytes: i64) -> String {
    format!("{}Ki", bytes / 1024)
}

/// CPU millicores in the canonical form (`500m`, or whole cores as `2`).
pub fn format_millicores(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_decimal_and_binary_suffixes() {
        assert_eq!(cpu_millis("500m"), Ok(500));
        assert_eq!(cpu_millis("2"), Ok(2000));
        assert_eq!(cpu_millis("1.5"), Ok(1500));
        assert_eq!(cpu_millis("250000000n"), Ok(250));
        assert_eq!(memory_bytes("1Gi"), Ok(1 << 30));
        assert_eq!(memory_bytes("512Mi"), Ok(512 << 20));
        assert_eq!(memory_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(memory_bytes("1e3"), Ok(1000));
    }

    #[test]
    fn parse_rejects_unknown_suffix() {
        assert_eq!(parse("3Qi"), Err(InvalidQuantity("3Qi".into())));
        assert!(parse("").is_err());
        assert!(parse("-1").is_err());
    }

    #[test]
    fn formats_match_metrics_server() {
        assert_eq!(format_nanocores(9_559_630), "9559630n");
        assert_eq!(format_kibibytes(22244 * 1024), "22244Ki");
        assert_eq!(format_millicores(15890), "15890m");
        assert_eq!(format_millicores(2000), "2");
    }
}
