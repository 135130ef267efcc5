//! The config file as serde reads it. Every struct rejects unknown keys.
//! Scalars that users often get wrong (durations, identities, kinds, counts)
//! are read loosely, as strings or signed integers, so that validation can
//! report all of them at once with their key paths instead of stopping at
//! the first type error.
//!
//! The same structs serialize the effective config, which is why they
//! derive `Serialize` and skip absent values.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<OrderedMap<RawService>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<RawRoles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RawPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RawRedis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<RawCluster>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<super::chat::RawSlack>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<super::chat::RawDiscord>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe: Option<RawRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended: Option<RawRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<RawCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_approval_allowed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_step: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_store: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

/// A list entry of `checks`: a bare name (`redis-connected`) or a map with
/// one key, the name, whose value contains the parameters
/// (`kafka-consumer-lag: {group: synapse-service}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawCheck {
    pub name: String,
    /// `None` for the bare form.
    pub parameters: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoles {
    #[serde(default)]
    pub requesters: Vec<String>,
    #[serde(default)]
    pub approvers: Vec<String>,
    #[serde(default)]
    pub admins: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<RawApprovals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expiry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_per_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RawRateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_max_wait: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApprovals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_recommended: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_recommended: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_requester: Option<RawRate>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedis {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A YAML mapping read in file order, so that services are listed in the
/// order the operator wrote them. Duplicate keys are rejected by the YAML
/// parser before they get here.
#[derive(Debug, Default)]
pub(super) struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = OrderedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of service names to their settings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, V>()? {
                    entries.push((key, value));
                }
                Ok(OrderedMap(entries))
            }
        }

        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RawCheck {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CheckVisitor;

        impl<'de> Visitor<'de> for CheckVisitor {
            type Value = RawCheck;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a check name, or a map from a check name to its parameters")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(RawCheck {
                    name: name.to_string(),
                    parameters: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(name) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("empty check; expected a check name"));
                };
                let parameters: Option<BTreeMap<String, String>> = map.next_value()?;
                if let Some(other) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "check {name:?} is followed by {other:?} in the same list item; write one check per item, each starting with '-'"
                    )));
                }
                Ok(RawCheck {
                    name,
                    parameters: Some(parameters.unwrap_or_default()),
                })
            }
        }

        deserializer.deserialize_any(CheckVisitor)
    }
}

impl Serialize for RawCheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.parameters {
            None => serializer.serialize_str(&self.name),
            Some(parameters) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(&self.name, parameters)?;
                map.end()
            }
        }
    }
}
