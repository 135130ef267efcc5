//! Server-side printing: `meta.k8s.io/v1` Table responses.
//!
//! `kubectl get` requests a Table and prints its cells as they come, so the
//! column set and cell formats here are what a person sees. Columns with
//! priority 1 appear only with `-o wide`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::request::IncludeObject;
use crate::registry::ResourceType;

mod cells;
mod cluster;
mod columns;
mod network;
mod workloads;

/// One column definition.
pub struct Column {
    pub name: &'static str,
    /// `string`, `integer` or `date`.
    pub kind: &'static str,
    pub priority: u8,
    pub description: &'static str,
}

impl Column {
    pub const fn new(
        name: &'static str,
        kind: &'static str,
        priority: u8,
        description: &'static str,
    ) -> Self {
        Self {
            name,
            kind,
            priority,
            description,
        }
    }
}

/// Builds a Table of `objects`. `list_metadata` becomes the Table's
/// metadata (resourceVersion, continue).
pub fn build(
    resource: &ResourceType,
    objects: &[Value],
    list_metadata: Value,
    include: IncludeObject,
) -> Value {
    let now = Utc::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| row(resource, o, include, now))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": column_definitions(resource),
        "rows": rows,
    })
}

pub fn column_definitions(resource: &ResourceType) -> Vec<Value> {
    columns::for_resource(resource)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

fn row(
    resource: &ResourceType,
    object: &Value,
    include: IncludeObject,
    now: DateTime<Utc>,
) -> Value {
    let mut row = json!({"cells": cells::cells(resource, object, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => row["object"] = partial_metadata(object),
        IncludeObject::Object => row["object"] = object.clone(),
    }
    row
}

/// `PartialObjectMetadata` of an object: kind, apiVersion and metadata only.
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"],
    })
}

/// Age of an object in kubectl's format (`45s`, `3m20s`, `5h`, `12d`).
pub fn age(timestamp: &Value, now: DateTime<Utc>) -> String {
    let Some(created) = timestamp
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return "<unknown>".into();
    };
    human_duration((now - created.with_timezone(&Utc)).num_seconds())
}

/// Formats a duration the way Kubernetes' `duration.HumanDuration` does:
/// more precision for short durations, coarser units as they grow.
pub fn human_duration(seconds: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    const YEAR: i64 = 365 * DAY;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 2 * MINUTE {
        return format!("{seconds}s");
    }
    let minutes = seconds / MINUTE;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % MINUTE, "s");
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / HOUR;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = seconds / DAY;
    if hours < 8 * 24 {
        return with_remainder(days, "d", hours % 24, "h");
    }
    if hours < 2 * 365 * 24 {
        return format!("{days}d");
    }
    let years = seconds / YEAR;
    if hours < 8 * 365 * 24 {
        return with_remainder(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

fn with_remainder(major: i64, major_unit: &str, minor: i64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_matches_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (11 * 60, "11m"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400, "3y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds} seconds");
        }
    }
}
