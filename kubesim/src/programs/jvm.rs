//! The JVM heap a container gets from its `JAVA_OPTS` and memory limit,
//! with HotSpot's defaults (JDK 11 and later) where flags are missing.

use super::pods::PodView;

const MIB: f64 = 1024.0 * 1024.0;
/// HotSpot's default `-XX:MaxRAMPercentage`.
const DEFAULT_MAX_RAM_PERCENTAGE: f64 = 25.0;
/// HotSpot's default `-XX:InitialRAMPercentage` (1/64 of memory).
const DEFAULT_INITIAL_RAM_PERCENTAGE: f64 = 1.5625;
/// Memory available to the JVM without a container limit: the simulated
/// node size.
const NODE_MEMORY: &str = "16Gi";

/// Initial and maximum heap in bytes, and how they were derived.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Heap {
    pub initial: u64,
    pub max: u64,
    /// `from -Xms2g -Xmx4g` or `from container memory limit 4Gi, MaxRAMPercentage=25.0`.
    pub source: String,
}

impl Heap {
    /// Formats the log line the services print at start, which
    /// `grep -i heap` matches.
    pub fn log_line(&self) -> String {
        format!(
            "JVM heap: initial={}m max={}m ({})",
            (self.initial as f64 / MIB).round(),
            (self.max as f64 / MIB).round(),
            self.source
        )
    }
}

/// Parses a JVM size such as `2g`, `512m`, `1048576`.
fn jvm_size(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// Parses a Kubernetes memory quantity such as `4Gi`, `512Mi`, `1G` or
/// `1073741824`.
pub(crate) fn quantity_bytes(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => MIB,
        "Gi" => 1024.0 * MIB,
        "Ti" => 1024.0 * 1024.0 * MIB,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some((number * scale) as u64)
}

/// Computes the heap of container `container` (first when empty) of `pod`.
pub(crate) fn heap(pod: &PodView, container: &str) -> Heap {
    let options = pod
        .env(container, "JAVA_OPTS")
        .or_else(|| pod.env(container, "JAVA_TOOL_OPTIONS"))
        .unwrap_or_default();
    let mut xms = None;
    let mut xmx = None;
    let mut max_percentage = None;
    let mut initial_percentage = None;
    let mut flags = Vec::new();
    for option in options.split_whitespace() {
        if let Some(size) = option.strip_prefix("-Xms").and_then(jvm_size) {
            xms = Some(size);
            flags.push(option);
        } else if let Some(size) = option.strip_prefix("-Xmx").and_then(jvm_size) {
            xmx = Some(size);
            flags.push(option);
        } else if let Some(value) = option.strip_prefix("-XX:MaxRAMPercentage=") {
            max_percentage = value.parse::<f64>().ok();
        } else if let Some(value) = option.strip_prefix("-XX:InitialRAMPercentage=") {
            initial_percentage = value.parse::<f64>().ok();
        }
    }

    let limit = pod
        .container(container)
        .and_then(|c| c["resources"]["limits"]["memory"].as_str())
        .map(str::to_string);
    let (memory_text, memory_source) = match &limit {
        Some(limit) => (limit.clone(), "container memory limit"),
        None => (NODE_MEMORY.to_string(), "node memory"),
    };
    let memory = quantity_bytes(&memory_text).unwrap_or(16 << 30) as f64;
    let max_percentage = max_percentage.unwrap_or(DEFAULT_MAX_RAM_PERCENTAGE);
    let initial_percentage = initial_percentage.unwrap_or(DEFAULT_INITIAL_RAM_PERCENTAGE);

    let max = xmx.unwrap_or((memory * max_percentage / 100.0) as u64);
    let initial = xms
        .unwrap_or((memory * initial_percentage / 100.0) as u64)
        .min(max);
    let mut parts = Vec::new();
    if !flags.is_empty() {
        parts.push(flags.join(" "));
    }
    if xms.is_none() || xmx.is_none() {
        parts.push(format!(
            "{memory_source} {memory_text}, MaxRAMPercentage={max_percentage:.1}"
        ));
    }
    Heap {
        initial,
        max,
        source: format!("from {}", parts.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::programs::testing::pod;

    fn view(builder: crate::programs::testing::PodBuilder) -> PodView {
        let cluster = crate::programs::testing::cluster();
        PodView::from_object(builder.create(&cluster))
    }

    #[test]
    fn heap_from_java_opts() {
        let pod = view(
            pod("synapse-a", "synapse", "10.0.0.1").env("JAVA_OPTS", "-Xms2g -Xmx4g -XX:+UseG1GC"),
        );
        let heap = heap(&pod, "");
        assert_eq!(
            heap.log_line(),
            "JVM heap: initial=2048m max=4096m (from -Xms2g -Xmx4g)"
        );
    }

    #[test]
    fn heap_from_memory_limit() {
        let pod = view(pod("synapse-b", "synapse", "10.0.0.2").memory_limit("4Gi"));
        let heap = heap(&pod, "");
        assert_eq!(heap.max, 1 << 30);
        assert_eq!(
            heap.log_line(),
            "JVM heap: initial=64m max=1024m (from container memory limit 4Gi, MaxRAMPercentage=25.0)"
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_bytes("512Mi"), Some(512 << 20));
        assert_eq!(quantity_bytes("1G"), Some(1_000_000_000));
        assert_eq!(quantity_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(quantity_bytes("lots"), None);
        assert_eq!(jvm_size("2g"), Some(2 << 30));
        assert_eq!(jvm_size("2x"), None);
    }
}
