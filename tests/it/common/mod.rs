//! Helpers shared by the integration tests: the registry, frames and fixture files.
#![allow(dead_code)]

use serde_json::Value;
use switchboard::dialect::translate::{Side, Translator};
use switchboard::dialect::{Direction, Registry};

/// The shipped dialects.
pub const DIALECTS: [&str; 6] = [
    "nexus",
    "clerk",
    "phase10",
    "salala",
    "chat-service",
    "webhook",
];

/// The shipped mappings, read once from the repository's `mappings/` directory.
pub fn registry() -> &'static Registry {
    static REG: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REG.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        match Registry::load_dir(&dir) {
            Ok(r) => r,
            Err(e) => panic!("shipped mappings do not load:\n{e}"),
        }
    })
}

/// Parses a JSONL fixture of `{"dir", "frame"}` lines.
pub fn examples(dialect: &str) -> Vec<(Direction, Value)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/examples")
        .join(format!("{dialect}.jsonl"));
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("fixture line is JSON");
            let dir = Direction::parse(v["dir"].as_str().expect("dir")).expect("up or down");
            (dir, v["frame"].clone())
        })
        .collect()
}

/// Translates one frame, returning the output frames parsed back to JSON.
pub fn translate(
    reg: &Registry,
    from: &str,
    to: &str,
    dir: Option<Direction>,
    frame: &Value,
) -> Result<Vec<Value>, String> {
    let from = Side::named(reg, from).map_err(|e| e.to_string())?;
    let to = Side::named(reg, to).map_err(|e| e.to_string())?;
    let tr = Translator::new(reg, from, to, dir);
    let mut out = Vec::new();
    tr.translate(frame.to_string().as_bytes(), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("output is JSON"))
        .collect())
}
