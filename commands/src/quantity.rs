//! Kubernetes resource quantities (`500m`, `2`, `1Gi`, `512M`) as plain
//! numbers: CPU in millicores, memory in bytes.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
#[error(
    "invalid resource quantity {value:?}: expected a number with an optional suffix (m, k, M, G, T, Ki, Mi, Gi, Ti)"
)]
pub struct InvalidQuantity {
    pub value: String,
}

/// Parses a CPU quantity into millicores (`500m` → 500, `2` → 2000, `1.5` → 1500).
pub fn cpu_millis(text: &str) -> Result<u64, InvalidQuantity> {
    let value = parse(text)?;
    Ok((value * 1000.0).round() as u64)
}

/// Parses a memory quantity into bytes (`1Gi` → 1073741824, `1G` → 1000000000).
pub fn memory_bytes(text: &str) -> Result<u64, InvalidQuantity> {
    Ok(parse(text)?.round() as u64)
}

fn parse(text: &str) -> Result<f64, InvalidQuantity> {
    let invalid = || InvalidQuantity {
        value: text.to_string(),
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(invalid()),
    };
    Ok(number * factor)
}

/// Formats millicores for people: `1500m` as `1.5 CPU`, `250m` as `250m CPU`.
pub fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        format!("{} CPU", millis / 1000)
    } else if millis >= 1000 {
        format!("{:.1} CPU", millis as f64 / 1000.0)
    } else {
        format!("{millis}m CPU")
    }
}

/// Formats bytes in binary units: `1.5 GiB`, `512 MiB`.
pub fn format_memory(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    let value = bytes as f64;
    if value >= GIB {
        let gib = value / GIB;
        if gib.fract() == 0.0 {
            format!("{gib:.0} GiB")
        } else {
            format!("{gib:.1} GiB")
        }
    } else {
        format!("{:.0} MiB", value / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_suffixes() {
        assert_eq!(cpu_millis("500m").unwrap(), 500);
        assert_eq!(cpu_millis("2").unwrap(), 2000);
        assert_eq!(cpu_millis("1.5").unwrap(), 1500);
    }

    #[test]
    fn memory_suffixes() {
        assert_eq!(memory_bytes("1Gi").unwrap(), 1 << 30);
        assert_eq!(memory_bytes("512Mi").unwrap(), 512 << 20);
        assert_eq!(memory_bytes("1G").unwrap(), 1_000_000_000);
    }

    #[test]
    fn rejects_unknown_suffix() {
        assert!(cpu_millis("2x").is_err());
        assert!(memory_bytes("Gi").is_err());
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_cpu(1500), "1.5 CPU");
        assert_eq!(format_cpu(250), "250m CPU");
        assert_eq!(format_memory(3 << 30), "3 GiB");
        assert_eq!(format_memory(512 << 20), "512 MiB");
    }
}
