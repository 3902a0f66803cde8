//! The configuration reference, generated from the documented default file (each key's
//! comment is its documentation): `switchboard config reference` prints it as Markdown,
//! and a test holds every field of the configuration types to having an entry.

use super::DEFAULT_TOML;

/// One documented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Dotted key (`limits.max_payload`, `listener[].port`).
    pub key: String,
    /// Its default, as written in the file.
    pub default: String,
    /// What it does (the comment above it).
    pub doc: String,
}

/// Every key of the default file with its comment.
pub fn entries() -> Vec<Entry> {
    let mut out = file_entries();
    out.extend(
        WEBHOOK_KEYS
            .iter()
            .chain(super::upstream::KEYS)
            .map(|(k, d, doc)| Entry {
                key: (*k).to_string(),
                default: (*d).to_string(),
                doc: (*doc).to_string(),
            }),
    );
    out
}

fn file_entries() -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut section = String::new();
    let mut doc: Vec<String> = Vec::new();
    // Comments just above a table header document its first key.
    let mut header_doc: Vec<String> = Vec::new();
    let mut in_routes = false;
    for line in DEFAULT_TOML.lines() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix('#') {
            doc.push(c.trim().to_string());
            continue;
        }
        if t.is_empty() {
            if !doc.is_empty() {
                header_doc.clear();
            }
            doc.clear();
            continue;
        }
        if t.starts_with('[') && !in_routes {
            let name = t.trim_matches(|c| c == '[' || c == ']');
            section = if t.starts_with("[[") {
                format!("{name}[]")
            } else {
                name.to_string()
            };
            header_doc = std::mem::take(&mut doc);
            continue;
        }
        if in_routes {
            if t.starts_with(']') {
                in_routes = false;
            }
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let v = v.trim();
        let key = if section.is_empty() {
            k.to_string()
        } else {
            format!("{section}.{k}")
        };
        if k == "routes" {
            in_routes = v.starts_with('[') && !v.ends_with(']');
            if out.iter().any(|e| e.key == key) {
                continue;
            }
            out.push(Entry {
                key,
                default: "see the file".into(),
                doc: "Paths bound to dialects: `{ path, transport = \"websocket\" | \"socketio\", namespace, dialect, upstream }` (`upstream`: the `[[upstream]]` this route's clients are proxied to).".into(),
            });
            doc.clear();
            continue;
        }
        if doc.is_empty() && !header_doc.is_empty() {
            doc = std::mem::take(&mut header_doc);
        }
        header_doc.clear();
        let text = if doc.is_empty() {
            out.iter()
                .rev()
                .find(|e: &&Entry| {
                    e.key.rsplit_once('.').map(|p| p.0) == key.rsplit_once('.').map(|p| p.0)
                })
                .map(|e| e.doc.clone())
                .unwrap_or_default()
        } else {
            doc.join(" ")
        };
        if !out.iter().any(|e| e.key == key) {
            out.push(Entry {
                key,
                default: v.to_string(),
                doc: text,
            });
        }
        doc.clear();
    }
    out
}

/// `[[webhook]]` has no entry in the default file (it ships none): its keys.
const WEBHOOK_KEYS: &[(&str, &str, &str)] = &[
    (
        "webhook[].name",
        "\"webhook-<n>\"",
        "A name for logs, metrics and the internal API.",
    ),
    (
        "webhook[].url",
        "(required)",
        "`http://` or `https://` URL the events are POSTed to.",
    ),
    (
        "webhook[].secrets",
        "(required)",
        "Signing secrets; during a rotation several, one signature each (`whsec_…` for Standard Webhooks).",
    ),
    (
        "webhook[].events",
        "[]",
        "Event types wanted (`message.created`, …); empty: every type.",
    ),
    (
        "webhook[].timeout",
        "\"10s\"",
        "How long one attempt may take.",
    ),
    ("webhook[].headers", "{}", "Extra request headers."),
    (
        "webhook[].standard",
        "false",
        "Also send the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`).",
    ),
];

/// The reference as a Markdown table.
pub fn markdown() -> String {
    let mut s = String::from("| key | default | meaning |\n|---|---|---|\n");
    for e in entries() {
        s.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            e.key,
            e.default.replace('|', "\\|"),
            e.doc.replace('|', "\\|")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn leaves(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&key, v, out);
                }
            }
            toml::Value::Array(a) if a.first().is_some_and(toml::Value::is_table) => {
                leaves(&format!("{prefix}[]"), &a[0], out);
            }
            _ => out.push(prefix.to_string()),
        }
    }

    #[test]
    fn every_configuration_field_is_documented_in_the_default_file() {
        let mut cfg = Config::from_toml(DEFAULT_TOML).expect("default");
        cfg.webrtc.ice_servers[0].username = Some("u".into());
        cfg.webrtc.ice_servers[0].credential = Some("c".into());
        cfg.webhook.push(crate::config::WebhookEndpoint {
            name: "n".into(),
            url: "http://example.com/".into(),
            secrets: vec!["s".into()],
            events: vec!["message.created".into()],
            timeout: std::time::Duration::from_secs(1),
            headers: [("x".to_string(), "y".to_string())].into_iter().collect(),
            standard: true,
        });
        let mut up: crate::config::UpstreamConfig = toml::from_str(
            "name = \"b\"\nurl = \"ws://h/ws\"\ndialect = \"nexus\"\ntransport = \"websocket\"\ntoken = \"query\"\nanswers = { \"message.send\" = \"message.created\" }\n[resign]\nsecret = \"s\"\nclaims = { userId = \"sub\" }\nextra = { aud = \"x\" }\n",
        )
        .expect("upstream");
        up.hub = vec!["presence.*".into()];
        up.shared = vec!["room.join".into()];
        up.http = vec!["/api/".into()];
        cfg.upstreams.push(up);
        let v = toml::Value::try_from(&cfg).expect("serialises");
        let mut keys = Vec::new();
        leaves("", &v, &mut keys);
        let documented: Vec<String> = entries().into_iter().map(|e| e.key).collect();
        let optional = [
            "webrtc.ice_servers[].username",
            "webrtc.ice_servers[].credential",
            // A free-form table: the entry is `webhook[].headers`.
            "webhook[].headers.x",
            // Free-form tables: the entries are the tables.
            "upstream[].answers.message.send",
            "upstream[].resign.claims.userId",
            "upstream[].resign.extra.aud",
        ];
        for k in keys {
            let k = k
                .split(".routes[]")
                .next()
                .map(|s| {
                    if k.contains(".routes[]") {
                        format!("{s}.routes")
                    } else {
                        s.to_string()
                    }
                })
                .unwrap_or(k);
            if optional.contains(&k.as_str()) {
                continue;
            }
            assert!(
                documented.contains(&k),
                "`{k}` is not documented in config/switchboard.toml"
            );
        }
        for e in entries() {
            assert!(
                !e.doc.is_empty(),
                "`{}` has no comment in config/switchboard.toml",
                e.key
            );
        }
    }
}
