//! The configuration's documentation, generated from one source: the doc comments of
//! the configuration types (read through their JSON Schema, `schemars`). From it come
//! `switchboard config reference` (the README's Markdown table) and the documented
//! default file (`switchboard config default`, which `config/switchboard.toml` is; a
//! test holds the two equal, `scripts/readme-reference` rewrites both).

use super::{Config, DEFAULT_TOML};
use serde_json::{Map, Value};

/// One documented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Dotted key (`limits.max_payload`, `listener[].port`).
    pub key: String,
    /// Its default, as TOML (or `(required)`, `(none)`).
    pub default: String,
    /// What it does: the field's doc comment, on one line.
    pub doc: String,
}

/// The configuration's schema, as JSON.
fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or(Value::Null)
}

/// A schema with its `$ref` followed and an `Option`'s null variant set aside.
fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        if let Some(d) = root.get("$defs").and_then(|d| d.get(name)) {
            return resolve(root, d);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(vs) = s.get(key).and_then(Value::as_array) {
            let non_null: Vec<&Value> = vs
                .iter()
                .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if let [one] = non_null.as_slice()
                && (one.get("$ref").is_some() || one.get("properties").is_some())
            {
                return resolve(root, one);
            }
        }
    }
    s
}

/// A struct's properties, when `s` is one (not a free-form table).
fn properties<'a>(root: &'a Value, s: &'a Value) -> Option<&'a Map<String, Value>> {
    resolve(root, s)
        .get("properties")
        .and_then(Value::as_object)
}

/// A list's item schema, when `s` is a list of structs (an array of tables).
fn table_items<'a>(root: &'a Value, s: &'a Value) -> Option<&'a Value> {
    let items = resolve(root, s).get("items")?;
    properties(root, items).map(|_| items)
}

/// A doc comment on one line.
fn one_line(s: &Value) -> String {
    s.get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A TOML value written inline.
fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => toml::Value::String(s.clone()).to_string(),
        toml::Value::Array(a) => {
            format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", "))
        }
        toml::Value::Table(t) => {
            if t.is_empty() {
                return "{}".into();
            }
            let kv: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{k} = {}", inline(v)))
                .collect();
            format!("{{ {} }}", kv.join(", "))
        }
        other => other.to_string(),
    }
}

/// A JSON default (from the schema) as TOML text.
fn json_default(v: &Value) -> String {
    toml::Value::try_from(v).map_or_else(|_| v.to_string(), |t| inline(&t))
}

/// A struct's properties in the order its type declares them: as its value serialises
/// (`values`), then any it left out (unset options), by name.
fn ordered<'a>(
    props: &'a Map<String, Value>,
    values: Option<&toml::Value>,
) -> Vec<(&'a String, &'a Value)> {
    let mut out: Vec<(&String, &Value)> = Vec::new();
    if let Some(toml::Value::Table(t)) = values {
        for k in t.keys() {
            if let Some((name, s)) = props.get_key_value(k) {
                out.push((name, s));
            }
        }
    }
    for (name, s) in props {
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, s));
        }
    }
    out
}

/// Every key, in the order the types declare them, with its default (taken from
/// `defaults`, the shipped configuration, where it has the key) and its doc comment.
fn walk(
    root: &Value,
    props: &Map<String, Value>,
    required: &[&str],
    prefix: &str,
    defaults: Option<&toml::Value>,
    out: &mut Vec<Entry>,
) {
    for (name, s) in ordered(props, defaults) {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let here = defaults.and_then(|d| d.get(name));
        if let Some(items) = table_items(root, s) {
            // The routes of a listener are documented as one key.
            if name != "routes" {
                let item = resolve(root, items);
                let req = required_of(item);
                if let Some(p) = properties(root, items) {
                    let first = here.and_then(|h| h.as_array()).and_then(|a| a.first());
                    walk(root, p, &req, &format!("{key}[]"), first, out);
                }
                continue;
            }
        }
        if let Some(p) = properties(root, s)
            && name != "headers"
        {
            let req = required_of(resolve(root, s));
            walk(root, p, &req, &key, here, out);
            continue;
        }
        // In an array of tables the values are an example's, not defaults.
        let in_list = prefix.contains("[]");
        let default = match (here.filter(|_| !in_list), s.get("default")) {
            _ if required.contains(&name.as_str()) => "(required)".into(),
            _ if name == "routes" => "see the default file".into(),
            (Some(v), _) => inline(v),
            (None, Some(d)) if !d.is_null() => json_default(d),
            _ => "(none)".into(),
        };
        out.push(Entry {
            key,
            default,
            doc: one_line(s),
        });
    }
}

fn required_of(s: &Value) -> Vec<&str> {
    s.get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The shipped configuration as TOML values (the defaults shown), with a sample
/// `[[webhook]]` and `[[upstream]]` (it has none) to show theirs.
fn shipped() -> Option<toml::Value> {
    let mut cfg = Config::from_toml(DEFAULT_TOML).ok()?;
    if cfg.webhook.is_empty() {
        cfg.webhook
            .push(toml::from_str("url = \"http://example.com/\"").ok()?);
    }
    if cfg.upstreams.is_empty() {
        cfg.upstreams.push(
            toml::from_str(
                "name = \"b\"\nurl = \"ws://b/ws\"\ndialect = \"nexus\"\ntransport = \"websocket\"",
            )
            .ok()?,
        );
    }
    toml::Value::try_from(&cfg).ok()
}

/// Every key with its default and documentation.
pub fn entries() -> Vec<Entry> {
    let root = schema();
    let mut out = Vec::new();
    if let Some(p) = properties(&root, &root) {
        walk(&root, p, &[], "", shipped().as_ref(), &mut out);
    }
    out
}

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

/// `text` as `#` comment lines of at most 88 columns.
fn comment(text: &str, out: &mut String) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 88 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    if line.len() > 1 {
        out.push_str(&line);
        out.push('\n');
    }
}

/// One table's keys: each documented (unless `quiet`: a second item of an array of
/// tables), then `key = value`.
fn table_body(
    root: &Value,
    props: &Map<String, Value>,
    values: &toml::map::Map<String, toml::Value>,
    quiet: bool,
    out: &mut String,
) {
    let as_value = toml::Value::Table(values.clone());
    for (name, s) in ordered(props, Some(&as_value)) {
        let Some(v) = values.get(name) else { continue };
        if properties(root, s).is_some() && name != "headers"
            || table_items(root, s).is_some() && name != "routes"
        {
            continue;
        }
        if !quiet {
            let doc = s
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            comment(doc, out);
        }
        if name == "routes" {
            out.push_str("routes = [\n");
            for r in v.as_array().into_iter().flatten() {
                out.push_str(&format!("  {},\n", inline(r)));
            }
            out.push_str("]\n");
        } else {
            out.push_str(&format!("{name} = {}\n", inline(v)));
        }
    }
}

/// The documented default configuration file: the shipped configuration (`seed`), each
/// key under its doc comment, each table under its section's.
pub fn default_file(seed: &Config) -> String {
    let root = schema();
    let mut out = String::new();
    comment(
        "switchboard's default configuration, generated from the configuration types' \
         documentation (`switchboard config default`; do not edit by hand: \
         `scripts/readme-reference` rewrites it). This file is embedded in the binary: \
         `switchboard serve` with no --config runs exactly this. Every key is optional; \
         absent keys take the values shown here (but `[[listener]]`: a file that has \
         none has no listener). Environment variables override the file (named beside \
         each key).",
        &mut out,
    );
    let Ok(toml::Value::Table(values)) = toml::Value::try_from(seed) else {
        return out;
    };
    let Some(props) = properties(&root, &root) else {
        return out;
    };
    out.push('\n');
    let as_value = toml::Value::Table(values.clone());
    table_body(&root, props, &values, false, &mut out);
    for (name, s) in ordered(props, Some(&as_value)) {
        let v = values.get(name);
        if let (Some(p), Some(toml::Value::Table(t))) = (properties(&root, s), v) {
            out.push('\n');
            out.push_str(&format!("[{name}]\n"));
            table_body(&root, p, t, false, &mut out);
            // Arrays of tables inside a section (`[[webrtc.ice_servers]]`).
            for (inner, is) in ordered(p, v) {
                if let (Some(items), Some(toml::Value::Array(a))) =
                    (table_items(&root, is), t.get(inner))
                {
                    comment(&one_line(is), &mut out);
                    for (i, item) in a.iter().enumerate() {
                        out.push_str(&format!("[[{name}.{inner}]]\n"));
                        if let (Some(ip), toml::Value::Table(it)) = (properties(&root, items), item)
                        {
                            table_body(&root, ip, it, i > 0, &mut out);
                        }
                    }
                }
            }
        } else if let Some(items) = table_items(&root, s) {
            out.push('\n');
            comment(&one_line(s), &mut out);
            let list = v
                .and_then(toml::Value::as_array)
                .cloned()
                .unwrap_or_default();
            if list.is_empty() {
                comment(
                    &format!(
                        "None by default; `[[{name}]]` keys: see `switchboard config reference`."
                    ),
                    &mut out,
                );
            }
            for (i, item) in list.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                out.push_str(&format!("[[{name}]]\n"));
                if let (Some(ip), toml::Value::Table(it)) = (properties(&root, items), item) {
                    table_body(&root, ip, it, i > 0, &mut out);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_is_the_generated_one() {
        let seed = Config::seed();
        assert_eq!(
            DEFAULT_TOML,
            default_file(&seed),
            "config/switchboard.toml is generated: run scripts/readme-reference"
        );
        let parsed = Config::from_toml(DEFAULT_TOML).expect("the default parses");
        assert_eq!(
            toml::Value::try_from(&parsed).ok(),
            toml::Value::try_from(&seed).ok(),
            "the default file reads back as the seed"
        );
    }

    #[test]
    fn every_key_is_documented() {
        let all = entries();
        for needle in [
            "limits.max_payload",
            "listener[].routes",
            "webhook[].url",
            "upstream[].resign.secret",
            "upstream[].answers",
            "webrtc.ice_servers[].urls",
            "privacy.client_info",
        ] {
            assert!(all.iter().any(|e| e.key == needle), "{needle}");
        }
        for e in &all {
            assert!(!e.doc.is_empty(), "`{}` has no doc comment", e.key);
        }
        let url = all
            .iter()
            .find(|e| e.key == "webhook[].url")
            .map(|e| e.default.clone());
        assert_eq!(url.as_deref(), Some("(required)"));
    }
}
