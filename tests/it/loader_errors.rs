//! Every error path of the mapping loader: a bad file gives its file, line and rule, never
//! a panic, and every error is reported at once.

use std::path::PathBuf;
use switchboard::dialect::{LoadError, Registry};

const VOCAB: &str = r#"
[fields]
conversationId = { type = "id", doc = "room" }
content = { type = "string?", doc = "text" }
status = { type = "string", doc = "status" }
userId = { type = "id", doc = "user" }
messageId = { type = "id", doc = "message" }

[events."message.send"]
kind = "intent"
doc = "send"
required = ["conversationId"]

[events."message.created"]
kind = "fact"
doc = "created"

[events."presence.changed"]
kind = "fact"
doc = "presence"
"#;

const HEADER: &str = "[dialect]\nname = \"d\"\nsystem = \"test\"\nframing = \"socketio\"\n";

fn load(dialect: &str) -> Vec<LoadError> {
    load_with(VOCAB, dialect)
}

fn load_with(vocab: &str, dialect: &str) -> Vec<LoadError> {
    let files = vec![
        (PathBuf::from("m/canonical.toml"), vocab.to_string()),
        (PathBuf::from("m/d.toml"), dialect.to_string()),
    ];
    match Registry::from_sources(&files) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    }
}

/// Asserts exactly one error, with this rule, at this line, and returns its message.
fn one(errors: &[LoadError], rule: &str, line: usize) -> String {
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    let e = &errors[0];
    assert_eq!((e.rule, e.line), (rule, line), "{e}");
    let text = e.to_string();
    assert!(text.starts_with(&format!("m/d.toml:{line}:")), "{text}");
    e.message.clone()
}

fn rule(body: &str) -> String {
    format!("{HEADER}\n[[event]]\n{body}\n")
}

#[test]
fn a_good_file_loads() {
    let errors = load(&rule(
        "wire = \"message:send\"\ndir = \"up\"\ncanonical = \"message.send\"\nfields = { room = \"conversationId\" }",
    ));
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn toml_syntax() {
    let m = one(&load(&format!("{HEADER}\n[[event]\nwire = 1\n")), "toml", 6);
    assert!(!m.is_empty());
}

#[test]
fn unknown_key() {
    let m = one(
        &load(&rule(
            "wire = \"a\"\ndir = \"up\"\ncanonical = \"message.send\"\nfeilds = {}",
        )),
        "toml",
        10,
    );
    assert!(m.contains("feilds"), "{m}");
}

#[test]
fn missing_key() {
    one(&load(&rule("wire = \"a\"\ndir = \"up\"")), "toml", 6);
}

#[test]
fn dialect_name_must_match_file() {
    let text = HEADER.replace("name = \"d\"", "name = \"other\"");
    one(&load(&text), "dialect-name", 2);
}

#[test]
fn framing() {
    let text = HEADER.replace("socketio", "morse");
    let m = one(&load(&text), "framing", 4);
    assert!(m.contains("morse"));
}

#[test]
fn direction() {
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"sideways\"\ncanonical = \"message.send\"\nfields = { r = \"conversationId\" }",
        )),
        "direction",
        8,
    );
}

#[test]
fn direction_must_fit_the_kind() {
    let m = one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.send\"\nfields = { r = \"conversationId\" }",
        )),
        "direction-kind",
        8,
    );
    assert!(m.contains("intent"), "{m}");
}

#[test]
fn unknown_canonical_event() {
    let m = one(
        &load(&rule(
            "wire = \"a\"\ndir = \"up\"\ncanonical = \"mesage.send\"",
        )),
        "unknown-canonical-event",
        9,
    );
    assert!(m.contains("mesage.send"));
}

#[test]
fn unknown_canonical_field() {
    let m = one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = { x = \"conversationid\" }",
        )),
        "unknown-canonical-field",
        10,
    );
    assert!(m.contains("conversationid"));
}

#[test]
fn required_field_must_be_mapped() {
    let m = one(
        &load(&rule(
            "wire = \"a\"\ndir = \"up\"\ncanonical = \"message.send\"\nfields = { c = \"content\" }",
        )),
        "unmapped-required",
        9,
    );
    assert!(m.contains("conversationId"));
}

#[test]
fn required_field_can_be_declared_lacking() {
    let text = format!(
        "{HEADER}[dialect.lacks]\n\"message.send:conversationId\" = \"no rooms\"\n\n[[event]]\nwire = \"a\"\ndir = \"up\"\ncanonical = \"message.send\"\n"
    );
    assert!(load(&text).is_empty());
}

#[test]
fn lacks_must_name_an_event() {
    let text = format!("{HEADER}[dialect.lacks]\n\"nope.never\" = \"x\"\n");
    one(&load(&text), "unknown-canonical-event", 6);
}

#[test]
fn field_paths() {
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = { \"a..b\" = \"content\" }",
        )),
        "field-path",
        10,
    );
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = { a = \"content.\" }",
        )),
        "field-path",
        10,
    );
}

#[test]
fn field_collisions() {
    let m = one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = { message = \"content\", \"message.id\" = \"messageId\" }",
        )),
        "field-collision",
        10,
    );
    assert!(m.contains("message.id"));
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nwhen = { s = 1 }\nfields = { s = \"status\" }",
        )),
        "field-collision",
        11,
    );
}

#[test]
fn field_rule_shape() {
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = { a = 3 }",
        )),
        "field-rule",
        10,
    );
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = { a = { to = \"content\", tpye = \"string\" } }",
        )),
        "field-rule",
        10,
    );
}

#[test]
fn field_type() {
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = { a = { to = \"content\", type = \"strng\" } }",
        )),
        "unknown-type",
        10,
    );
}

#[test]
fn value_map_must_be_one_to_one() {
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"presence.changed\"\nfields = { on = { to = \"status\", values = [[true, \"online\"], [false, \"online\"]] } }",
        )),
        "value-map",
        10,
    );
}

#[test]
fn meta_reference() {
    let m = one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\ndefaults = { content = \"@meta.nothing\" }",
        )),
        "meta-ref",
        10,
    );
    assert!(m.contains("@meta.at"));
}

#[test]
fn split_must_be_a_mapped_field() {
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nsplit = \"ids\"",
        )),
        "split",
        10,
    );
}

#[test]
fn only() {
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nonly = \"sometimes\"",
        )),
        "only",
        10,
    );
}

#[test]
fn wire_templates() {
    for (wire, why) in [
        ("user:{userId:new", "unclosed"),
        ("user:}x", "unbalanced"),
        ("user:{}:x", "field name"),
        ("{a}{b}", "separated"),
        ("user:{other}:x", "must be mapped"),
    ] {
        let errors = load(&rule(&format!(
            "wire = \"{wire}\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = {{ userId = \"userId\" }}"
        )));
        assert!(
            errors
                .iter()
                .any(|e| e.rule == "wire-template" && e.line == 7 && e.message.contains(why)),
            "{wire}: {errors:#?}"
        );
    }
}

#[test]
fn duplicate_rules() {
    let two = format!(
        "{HEADER}\n[[event]]\nwire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\n\n[[event]]\nwire = \"a\"\ndir = \"down\"\ncanonical = \"presence.changed\"\n"
    );
    let m = one(&load(&two), "duplicate-rule", 12);
    assert!(m.contains("line 7"), "{m}");
    let two = format!(
        "{HEADER}\n[[event]]\nwire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\n\n[[event]]\nwire = \"b\"\ndir = \"down\"\ncanonical = \"message.created\"\n"
    );
    let m = one(&load(&two), "duplicate-rule", 14);
    assert!(
        m.contains("only = \\\"decode\\\"") || m.contains("only = \"decode\""),
        "{m}"
    );
}

#[test]
fn vocabulary_errors() {
    let bad = "[fields]\nx = { type = \"str\", doc = \"\" }\n[events.single]\nkind = \"wish\"\ndoc = \"\"\nrequired = [\"y\"]\n";
    let files = vec![(PathBuf::from("m/canonical.toml"), bad.to_string())];
    let errors = Registry::from_sources(&files)
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    let rules: Vec<(&str, usize)> = errors.iter().map(|e| (e.rule, e.line)).collect();
    assert_eq!(
        rules,
        vec![
            ("unknown-type", 2),
            ("canonical-name", 3),
            ("event-kind", 4),
            ("unknown-canonical-field", 6)
        ]
    );
}

#[test]
fn vocabulary_is_required() {
    let files = vec![(PathBuf::from("m/d.toml"), HEADER.to_string())];
    let errors = Registry::from_sources(&files)
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert!(errors.iter().any(|e| e.rule == "vocabulary"));
}

#[test]
fn every_error_is_reported_at_once() {
    let text = format!(
        "{HEADER}\n[[event]]\nwire = \"a\"\ndir = \"up\"\ncanonical = \"nope.one\"\n\n[[event]]\nwire = \"b\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = {{ x = \"nofield\" }}\n"
    );
    let errors = load(&text);
    let rules: Vec<&str> = errors.iter().map(|e| e.rule).collect();
    assert_eq!(
        rules,
        vec!["unknown-canonical-event", "unknown-canonical-field"]
    );
}

#[test]
fn io_errors_name_the_directory() {
    let err = Registry::load_dir(std::path::Path::new("/nonexistent/mappings")).err();
    let e = err.map(|e| e.0).unwrap_or_default();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].rule, "io");
}

#[test]
fn an_event_routes_to_one_place() {
    let bad = "[fields]\nc = { type = \"id\", doc = \"\" }\nu = { type = \"id\", doc = \"\" }\n[events.\"a.b\"]\nkind = \"fact\"\ndoc = \"\"\nroom = \"c\"\nuser = \"u\"\n";
    let files = vec![(PathBuf::from("m/canonical.toml"), bad.to_string())];
    let errors = Registry::from_sources(&files)
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    let rules: Vec<(&str, usize)> = errors.iter().map(|e| (e.rule, e.line)).collect();
    assert_eq!(rules, vec![("one-route", 8)]);
}

#[test]
fn duplicates_policy() {
    let text = format!("{HEADER}duplicates = \"ignored\"\n");
    let m = one(&load(&text), "bad-duplicates", 5);
    assert!(m.contains("confirmed") && m.contains("refused"), "{m}");
    let ok = format!("{HEADER}duplicates = \"refused\"\ndedupe_content = true\n");
    assert!(load(&ok).is_empty());
}

#[test]
fn first_is_true_or_a_member_name() {
    for bad in ["1", "\"a.b\"", "\"\""] {
        one(
            &load(&rule(&format!(
                "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nfields = {{ f = {{ to = \"content\", first = {bad} }} }}"
            ))),
            "field-first",
            10,
        );
    }
}

#[test]
fn reach_is_for_down_rules_and_canonical_fields() {
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"up\"\ncanonical = \"message.send\"\nfields = { r = \"conversationId\" }\nreach = { sender = true }",
        )),
        "reach",
        11,
    );
    one(
        &load(&rule(
            "wire = \"a\"\ndir = \"down\"\ncanonical = \"message.created\"\nreach = { users = \"nobody\" }",
        )),
        "reach",
        10,
    );
}
