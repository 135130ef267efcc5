//! Stable identifiers derived from names, so a simulated node keeps its
//! Cassandra host ID or Redis node ID across restarts, as it would with its
//! data on a persistent volume.

/// FNV-1a (64-bit) over `parts`, with a separator byte between parts so
/// `["ab", "c"]` and `["a", "bc"]` differ, then MurmurHash3's 64-bit
/// finalizer so similar inputs give unrelated-looking outputs.
pub(crate) fn stable_hash(parts: &[&str]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// Derives `len` lowercase hex digits from `parts`.
pub(crate) fn stable_hex(parts: &[&str], len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut round = 0u32;
    while out.len() < len {
        let round_text = round.to_string();
        let mut seeded: Vec<&str> = parts.to_vec();
        seeded.push(&round_text);
        out.push_str(&format!("{:016x}", stable_hash(&seeded)));
        round += 1;
    }
    out.truncate(len);
    out
}

/// Derives a version-4-shaped UUID from `parts`.
pub(crate) fn stable_uuid(parts: &[&str]) -> String {
    let hex = stable_hex(parts, 32);
    let variant = ['8', '9', 'a', 'b'][usize::from(hex.as_bytes()[16]) % 4];
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        variant,
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_stable_and_well_formed() {
        let first = stable_uuid(&["butterfly", "cassandra-0"]);
        assert_eq!(first, stable_uuid(&["butterfly", "cassandra-0"]));
        assert_ne!(first, stable_uuid(&["butterfly", "cassandra-1"]));
        let groups: Vec<usize> = first.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
        assert_eq!(&first[14..15], "4");
    }

    #[test]
    fn hex_has_requested_length() {
        assert_eq!(stable_hex(&["redis-0"], 40).len(), 40);
        assert!(
            stable_hex(&["redis-0"], 40)
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        );
    }
}
