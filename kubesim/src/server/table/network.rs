//! Cells of Services, Endpoints and EndpointSlices.

use serde_json::{Value, json};

use super::cells::{int, text};

/// At most this many endpoints are listed before `+ N more...`.
const ENDPOINTS_SHOWN: usize = 3;

pub(super) fn endpoints_text(subsets: &Value) -> String {
    let mut all = Vec::new();
    for subset in subsets.as_array().into_iter().flatten() {
        let ports: Vec<i64> = subset["ports"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["port"].as_i64()).collect())
            .unwrap_or_default();
        for address in subset["addresses"].as_array().into_iter().flatten() {
            let ip = address["ip"].as_str().unwrap_or_default();
            if ports.is_empty() {
                all.push(ip.to_string());
            }
            for port in &ports {
                all.push(format!("{ip}:{port}"));
            }
        }
    }
    if all.is_empty() {
        return "<none>".into();
    }
    let mut shown = all
        .iter()
        .take(ENDPOINTS_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if all.len() > ENDPOINTS_SHOWN {
        shown.push_str(&format!(" + {} more...", all.len() - ENDPOINTS_SHOWN));
    }
    shown
}

pub(super) fn endpoint_slice_cells(slice: &Value, name: Value, created: String) -> Vec<Value> {
    let ports: Vec<String> = slice["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["port"].as_i64().map(|port| port.to_string()))
        .collect();
    let addresses: Vec<String> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let mut shown = addresses
        .iter()
        .take(ENDPOINTS_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if addresses.len() > ENDPOINTS_SHOWN {
        shown.push_str(&format!(" + {} more...", addresses.len() - ENDPOINTS_SHOWN));
    }
    vec![
        name,
        json!(text(&slice["addressType"], "")),
        json!(if ports.is_empty() {
            "<unset>".to_string()
        } else {
            ports.join(",")
        }),
        json!(if shown.is_empty() {
            "<unset>".to_string()
        } else {
            shown
        }),
        json!(created),
    ]
}

pub(super) fn service_cells(service: &Value, name: Value, created: String) -> Vec<Value> {
    let spec = &service["spec"];
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = text(&p["protocol"], "TCP");
            match p["nodePort"].as_i64() {
                Some(node_port) => format!("{}:{node_port}/{protocol}", int(&p["port"])),
                None => format!("{}/{protocol}", int(&p["port"])),
            }
        })
        .collect();
    let external: Vec<String> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip.as_str().map(str::to_string))
        .collect();
    let selector = spec["selector"]
        .as_object()
        .map_or("<none>".to_string(), |labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        });
    vec![
        name,
        json!(text(&spec["type"], "ClusterIP")),
        json!(text(&spec["clusterIP"], "<none>")),
        json!(if external.is_empty() {
            "<none>".to_string()
        } else {
            external.join(",")
        }),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        }),
        json!(created),
        json!(selector),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_text_truncates_after_three() {
        let subsets = json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
                              "ports": [{"port": 8080}]}]);
        assert_eq!(
            endpoints_text(&subsets),
            "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more..."
        );
    }
}
