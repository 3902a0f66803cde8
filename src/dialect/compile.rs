//! Validates a dialect's mapping file against the vocabulary and compiles it into a plan.
//! Every error names the file, the line and the rule broken; all of them are reported.
//! One idea over 500 lines: the compiler, rule by rule, each check beside the part of
//! the plan it guards.

use super::jsontype::JsonType;
use super::path::Path;
use super::plan::{
    DefaultValue, Dialect, Direction, Emit, FieldOp, First, Framing, MetaRef, Reach, Rule,
    Template, ValueMap, WireName,
};
use super::source::Source;
use super::spec::{DialectFile, RawFieldFull, RawRule, SpannedTable};
use super::vocabulary::{EventKind, Vocabulary};
use serde_json::Value;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// Compiles one dialect file. Returns `None` when it could not be read at all; otherwise a
/// dialect (possibly partial, when `src.errors` is not empty).
pub fn compile_dialect(src: &mut Source<'_>, vocab: &Vocabulary) -> Option<Dialect> {
    let file: DialectFile = match toml::from_str(src.text) {
        Ok(f) => f,
        Err(e) => {
            src.toml_error(&e);
            return None;
        }
    };
    let h = &file.dialect;
    if let Some(stem) = src.file.file_stem().and_then(|s| s.to_str())
        && stem != h.name.get_ref()
    {
        let msg = format!(
            "dialect name `{}` must equal the file name `{stem}`",
            h.name.get_ref()
        );
        src.error(h.name.span(), "dialect-name", msg);
    }
    let framing = Framing::parse(h.framing.get_ref()).unwrap_or_else(|| {
        let msg = format!(
            "framing `{}` must be envelope, socketio or webhook",
            h.framing.get_ref()
        );
        src.error(h.framing.span(), "framing", msg);
        Framing::Envelope
    });
    let mut lacks = Vec::new();
    for (k, reason) in &h.lacks {
        let key = k.get_ref();
        let event = match key.split_once(':') {
            Some((ev, _field)) => ev,
            None => key.as_str(),
        };
        let known = match event.strip_suffix('*') {
            Some(prefix) => vocab.order.iter().any(|e| e.starts_with(prefix)),
            None => vocab.event(event).is_some(),
        };
        if !known {
            let msg = format!("`{key}` names no canonical event (write `event` or `event:field`)");
            src.error(k.span(), "unknown-canonical-event", msg);
        }
        lacks.push((key.clone(), reason.clone()));
    }

    let refuses_duplicates = match h
        .duplicates
        .as_ref()
        .map(|d| (d.span(), d.get_ref().as_str()))
    {
        None | Some((_, "confirmed")) => false,
        Some((_, "refused")) => true,
        Some((span, other)) => {
            let msg = format!("duplicates = `{other}`: write `confirmed` or `refused`");
            src.error(span, "bad-duplicates", msg);
            false
        }
    };
    let mut d = Dialect {
        name: Arc::from(h.name.get_ref().as_str()),
        system: h.system.clone(),
        spec: h.spec.clone(),
        framing,
        transport: h.transport.clone(),
        lacks,
        recovery: h.recovery,
        refuses_duplicates,
        dedupes_content: h.dedupe_content,
        rules: Vec::new(),
        decode_exact: Default::default(),
        decode_templates: Default::default(),
        encode_by_canon: Default::default(),
    };
    for raw in &file.events {
        let dirs: &[Direction] = match raw.dir.get_ref().as_str() {
            "up" => &[Direction::Up],
            "down" => &[Direction::Down],
            "both" => &Direction::ALL,
            other => {
                let msg = format!("dir `{other}` must be up, down or both");
                src.error(raw.dir.span(), "direction", msg);
                continue;
            }
        };
        if let Some(ev) = vocab.event(raw.canonical.get_ref()) {
            let wrong = match ev.kind {
                EventKind::Intent => dirs.contains(&Direction::Down),
                EventKind::Fact => dirs.contains(&Direction::Up),
                EventKind::Signal => false,
            };
            if wrong {
                let msg = format!(
                    "`{}` is {} {}: intents travel up, facts down (dir is `{}`)",
                    ev.name,
                    if ev.kind == EventKind::Intent {
                        "an"
                    } else {
                        "a"
                    },
                    ev.kind.as_str(),
                    raw.dir.get_ref()
                );
                src.error(raw.dir.span(), "direction-kind", msg);
                continue;
            }
        }
        let Some(rule) = compile_rule(src, vocab, &d, raw, Direction::Up) else {
            continue;
        };
        for &dir in dirs {
            let mut r = rule.clone();
            r.dir = dir;
            index_rule(src, &mut d, r, raw);
        }
    }
    Some(d)
}

/// Adds a compiled rule to the dialect's indexes, refusing ambiguous duplicates.
fn index_rule(src: &mut Source<'_>, d: &mut Dialect, rule: Rule, raw: &RawRule) {
    let i = d.rules.len();
    let dir = rule.dir.index();
    if rule.decodes {
        let clash = d
            .rules
            .iter()
            .find(|o| {
                o.decodes
                    && o.dir == rule.dir
                    && o.wire.pattern() == rule.wire.pattern()
                    && o.when == rule.when
            })
            .map(|o| o.line);
        if let Some(line) = clash {
            let msg = format!(
                "`{}` ({}) with the same `when` is already decoded by the rule at line {line}",
                rule.wire.pattern(),
                rule.dir
            );
            src.error(raw.wire.span(), "duplicate-rule", msg);
            return;
        }
        match &rule.wire {
            WireName::Exact(n) => d.decode_exact[dir].entry(n.clone()).or_default().push(i),
            WireName::Template(_) => d.decode_templates[dir].push(i),
        }
    }
    if rule.encodes {
        let clash = d
            .rules
            .iter()
            .find(|o| {
                o.encodes
                    && o.dir == rule.dir
                    && o.canonical == rule.canonical
                    && o.sets == rule.sets
            })
            .map(|o| o.line);
        if let Some(line) = clash {
            let msg = format!(
                "`{}` ({}) with the same `sets` is already encoded by the rule at line {line}; \
                 mark one `only = \"decode\"`",
                rule.canonical, rule.dir
            );
            src.error(raw.canonical.span(), "duplicate-rule", msg);
            return;
        }
        d.encode_by_canon[dir]
            .entry(rule.canonical.clone())
            .or_default()
            .push(i);
    }
    d.rules.push(rule);
}

fn compile_rule(
    src: &mut Source<'_>,
    vocab: &Vocabulary,
    d: &Dialect,
    raw: &RawRule,
    dir: Direction,
) -> Option<Rule> {
    let errors_before = src.errors.len();
    let canonical = match vocab.intern(raw.canonical.get_ref()) {
        Some(c) => c,
        None => {
            let msg = format!(
                "canonical event `{}` is not declared in canonical.toml",
                raw.canonical.get_ref()
            );
            src.error(raw.canonical.span(), "unknown-canonical-event", msg);
            Arc::from(raw.canonical.get_ref().as_str())
        }
    };
    let wire = compile_wire_name(src, &raw.wire);
    let (decodes, encodes) = match raw.only.as_ref().map(|o| (o.get_ref().as_str(), o.span())) {
        None => (true, true),
        Some(("decode", _)) => (true, false),
        Some(("encode", _)) => (false, true),
        Some((other, span)) => {
            let msg = format!("only `{other}` must be decode or encode");
            src.error(span, "only", msg);
            (true, true)
        }
    };
    let when = const_table(src, &raw.when, None);
    let sets = const_table(src, &raw.sets, Some(vocab));
    let consts = const_table(src, &raw.consts, None);
    let defaults = default_table(src, vocab, &raw.defaults);

    let mut fields: Vec<FieldOp> = Vec::new();
    let mut wire_spans: Vec<(Path, Range<usize>)> = Vec::new();
    for (p, _) in when.iter().chain(consts.iter()) {
        wire_spans.push((p.clone(), raw.wire.span()));
    }
    for (key, value) in &raw.fields {
        let Some(op) = compile_field(src, vocab, key, value) else {
            continue;
        };
        if let Some((other, _)) = wire_spans.iter().find(|(w, _)| w.overlaps(&op.wire)) {
            let msg = format!(
                "wire field `{}` collides with `{other}` (mapped, `when` or `const` already)",
                op.wire
            );
            src.error(key.span(), "field-collision", msg);
            continue;
        }
        wire_spans.push((op.wire.clone(), key.span()));
        fields.push(op);
    }
    for i in 0..fields.len() {
        let later = fields[i + 1..].iter().any(|f| f.canon == fields[i].canon);
        fields[i].last_use = !later;
    }
    if let Some(split) = &raw.split {
        match fields
            .iter_mut()
            .find(|f| f.wire.to_string() == *split.get_ref())
        {
            Some(f) => f.split = true,
            None => {
                let msg = format!(
                    "split field `{}` must be one of this rule's [fields]",
                    split.get_ref()
                );
                src.error(split.span(), "split", msg);
            }
        }
    }
    if let WireName::Template(t) = &wire {
        for p in &t.params {
            if !fields
                .iter()
                .any(|f| f.wire.depth() == 1 && f.wire.head() == &**p)
            {
                let msg = format!(
                    "name parameter `{{{p}}}` must be mapped in [fields] (e.g. `{p} = \"userId\"`)"
                );
                src.error(raw.wire.span(), "wire-template", msg);
            }
        }
    }

    // Required canonical fields: mapped, set, defaulted, or declared lacking.
    let mut required = Vec::new();
    if let Some(ev) = vocab.event(&canonical) {
        for r in &ev.required {
            let by_sets = sets.iter().any(|(p, _)| p.head() == &**r)
                || defaults.iter().any(|(p, _)| p.head() == &**r);
            let by_field = fields.iter().find(|f| f.canon.head() == &**r);
            let lacking = d.lack_reason(&format!("{canonical}:{r}")).is_some();
            match (by_sets, by_field) {
                (true, _) => {}
                (false, Some(f)) => required.push((Path::parse(r).ok()?, f.wire.to_string())),
                (false, None) if lacking || raw.passthrough => {
                    required.push((Path::parse(r).ok()?, r.to_string()))
                }
                (false, None) => {
                    let msg = format!(
                        "canonical `{canonical}` requires field `{r}`: map it, give a default, \
                         or declare `\"{canonical}:{r}\"` in the dialect's `lacks`"
                    );
                    src.error(raw.canonical.span(), "unmapped-required", msg);
                }
            }
        }
    }

    let mut canon_heads: Vec<Box<str>> = fields
        .iter()
        .map(|f| Box::from(f.canon.head()))
        .chain(sets.iter().map(|(p, _)| Box::from(p.head())))
        .collect();
    canon_heads.sort();
    canon_heads.dedup();
    let reach = compile_reach(src, vocab, raw);

    if src.errors.len() > errors_before {
        return None;
    }
    let route = vocab.event(&canonical).and_then(|e| e.route.clone());
    let lifts = canon_heads
        .iter()
        .filter_map(|h| {
            let f = vocab.fields.get(&**h)?;
            (!f.lift.is_empty()).then(|| (Arc::from(&**h), f.lift.clone()))
        })
        .collect();
    let mut trie = super::plan::KeyTrie::default();
    for (i, f) in fields.iter().enumerate().take(64) {
        if !f.split {
            trie.add(&f.wire, i as u8);
        }
    }
    let mut rule = Rule {
        wire,
        dir,
        canonical,
        when,
        sets,
        consts,
        defaults,
        fields,
        required,
        route,
        trie,
        passthrough: raw.passthrough,
        lifts,
        canon_heads,
        decodes,
        encodes,
        line: src.line(&raw.wire.span()),
        reach,
        note: raw.note.clone(),
        emit: None,
    };
    rule.emit = Emit::compile(&rule).map(Box::new);
    Some(rule)
}

fn compile_reach(src: &mut Source<'_>, vocab: &Vocabulary, raw: &RawRule) -> Option<Reach> {
    let r = raw.reach.as_ref()?;
    let span = r.span();
    let r = r.get_ref();
    if raw.dir.get_ref() == "up" {
        src.error(
            span.clone(),
            "reach",
            "`reach` says whom the hub delivers an event to: it belongs on a `down` rule",
        );
    }
    if let Some(f) = &r.users
        && !vocab.fields.contains_key(f.as_str())
    {
        let msg = format!("`reach.users` names `{f}`, which is not a canonical field");
        src.error(span, "reach", msg);
    }
    Some(Reach {
        sender: r.sender,
        everyone: r.everyone,
        users: r.users.as_deref().map(Arc::from),
    })
}

fn compile_wire_name(src: &mut Source<'_>, wire: &Spanned<String>) -> WireName {
    let s = wire.get_ref();
    if s.is_empty() {
        src.error(wire.span(), "wire-template", "wire name cannot be empty");
    }
    if !s.contains('{') && !s.contains('}') {
        return WireName::Exact(Arc::from(s.as_str()));
    }
    let mut lits = Vec::new();
    let mut params = Vec::new();
    let mut rest = s.as_str();
    loop {
        match rest.find('{') {
            None => {
                if rest.contains('}') {
                    src.error(
                        wire.span(),
                        "wire-template",
                        format!("unbalanced `}}` in `{s}`"),
                    );
                }
                lits.push(Box::from(rest));
                break;
            }
            Some(open) => {
                let lit = &rest[..open];
                if lit.contains('}') {
                    src.error(
                        wire.span(),
                        "wire-template",
                        format!("unbalanced `}}` in `{s}`"),
                    );
                }
                if !params.is_empty() && lit.is_empty() {
                    let msg = format!("parameters in `{s}` must be separated by literal text");
                    src.error(wire.span(), "wire-template", msg);
                }
                lits.push(Box::from(lit));
                let after = &rest[open + 1..];
                let Some(close) = after.find('}') else {
                    src.error(
                        wire.span(),
                        "wire-template",
                        format!("unclosed `{{` in `{s}`"),
                    );
                    lits.push(Box::from(""));
                    break;
                };
                let name = &after[..close];
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    let msg = format!("parameter `{{{name}}}` in `{s}` must be a field name");
                    src.error(wire.span(), "wire-template", msg);
                }
                params.push(Box::from(name));
                rest = &after[close + 1..];
            }
        }
    }
    WireName::Template(Template {
        source: Arc::from(s.as_str()),
        lits,
        params,
    })
}

fn to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn parse_path(src: &mut Source<'_>, key: &Spanned<String>) -> Option<Path> {
    match Path::parse(key.get_ref()) {
        Ok(p) => Some(p),
        Err(e) => {
            src.error(key.span(), "field-path", e.0);
            None
        }
    }
}

fn check_canon_head(src: &mut Source<'_>, vocab: &Vocabulary, p: &Path, span: Range<usize>) {
    if !vocab.fields.contains_key(p.head()) {
        let msg = format!(
            "canonical field `{}` is not declared in canonical.toml",
            p.head()
        );
        src.error(span, "unknown-canonical-field", msg);
    }
}

fn const_table(
    src: &mut Source<'_>,
    t: &SpannedTable<toml::Value>,
    canon: Option<&Vocabulary>,
) -> Vec<(Path, Value)> {
    let mut out = Vec::new();
    for (k, v) in t {
        let Some(p) = parse_path(src, k) else {
            continue;
        };
        if let Some(vocab) = canon {
            check_canon_head(src, vocab, &p, k.span());
        }
        out.push((p, to_json(v)));
    }
    out
}

fn default_table(
    src: &mut Source<'_>,
    vocab: &Vocabulary,
    t: &SpannedTable<toml::Value>,
) -> Vec<(Path, DefaultValue)> {
    let mut out = Vec::new();
    for (k, v) in t {
        let Some(p) = parse_path(src, k) else {
            continue;
        };
        check_canon_head(src, vocab, &p, k.span());
        let dv = match v.as_str() {
            Some(s) if s.starts_with("@@") => DefaultValue::Const(Value::String(s[1..].into())),
            Some(s) if s.starts_with("@field.") => match Path::parse(&s["@field.".len()..]) {
                Ok(f) => {
                    check_canon_head(src, vocab, &f, k.span());
                    DefaultValue::Field(f)
                }
                Err(_) => {
                    src.error(k.span(), "meta-ref", format!("`{s}` is not a field path"));
                    continue;
                }
            },
            Some(s) if s.starts_with('@') => match MetaRef::parse(&s[1..]) {
                Some(m) => DefaultValue::Meta(m),
                None => {
                    let msg = format!(
                        "`{s}` names no metadata (@meta.id, @meta.traceId, @meta.at, \
                         @meta.atMillis, @meta.user.id, @meta.user.name, @meta.user.image) \
                         nor a field (@field.<name>); `@@` for a literal @"
                    );
                    src.error(k.span(), "meta-ref", msg);
                    continue;
                }
            },
            _ => DefaultValue::Const(to_json(v)),
        };
        out.push((p, dv));
    }
    out
}

fn compile_field(
    src: &mut Source<'_>,
    vocab: &Vocabulary,
    key: &Spanned<String>,
    value: &Spanned<toml::Value>,
) -> Option<FieldOp> {
    let wire = parse_path(src, key)?;
    let full: RawFieldFull = match value.get_ref() {
        toml::Value::String(s) => RawFieldFull {
            to: s.clone(),
            ty: None,
            required: false,
            values: None,
            others_pass: false,
            first: None,
        },
        toml::Value::Table(_) => match value.get_ref().clone().try_into() {
            Ok(f) => f,
            Err(e) => {
                let e: toml::de::Error = e;
                src.error(value.span(), "field-rule", e.message().trim().to_string());
                return None;
            }
        },
        _ => {
            src.error(
                value.span(),
                "field-rule",
                "a field rule is a canonical path string or a table { to, type, required, values }",
            );
            return None;
        }
    };
    let canon = match Path::parse(&full.to) {
        Ok(p) => p,
        Err(e) => {
            src.error(value.span(), "field-path", e.0);
            return None;
        }
    };
    check_canon_head(src, vocab, &canon, value.span());
    let first = match &full.first {
        None | Some(toml::Value::Boolean(false)) => None,
        Some(toml::Value::Boolean(true)) => Some(First::Whole),
        Some(toml::Value::String(m)) if !m.is_empty() && !m.contains('.') => {
            Some(First::Member(m.as_str().into()))
        }
        Some(_) => {
            src.error(
                value.span(),
                "field-first",
                "`first` is `true` (the wire value is the list's first item) or a member name \
                 (`\"url\"`: the wire value is that member of the first item)",
            );
            return None;
        }
    };
    let ty = match &full.ty {
        Some(t) => JsonType::parse(t).unwrap_or_else(|| {
            src.error(value.span(), "unknown-type", format!("`{t}` is not a type"));
            JsonType::ANY
        }),
        None if first == Some(First::Whole) => JsonType::parse("object?").unwrap_or(JsonType::ANY),
        None if first.is_some() => JsonType::parse("string?").unwrap_or(JsonType::ANY),
        None if canon.depth() == 1 => vocab
            .fields
            .get(canon.head())
            .map(|f| f.ty)
            .unwrap_or(JsonType::ANY),
        None => JsonType::ANY,
    };
    let values = full.values.map(|pairs| {
        let pairs: Vec<(Value, Value)> = pairs
            .iter()
            .map(|(w, c)| (to_json(w), to_json(c)))
            .collect();
        let mut seen_w: HashMap<String, ()> = HashMap::new();
        let mut seen_c: HashMap<String, ()> = HashMap::new();
        for (w, c) in &pairs {
            if seen_w.insert(w.to_string(), ()).is_some()
                || seen_c.insert(c.to_string(), ()).is_some()
            {
                src.error(
                    value.span(),
                    "value-map",
                    format!(
                        "value map pair [{w}, {c}] repeats a value: the map must be one-to-one"
                    ),
                );
            }
        }
        ValueMap {
            pairs,
            others_pass: full.others_pass,
        }
    });
    if full.others_pass && values.is_none() {
        src.error(
            value.span(),
            "value-map",
            "`others_pass` needs a `values` map",
        );
    }
    let same_key = wire.depth() == 1 && wire == canon;
    Some(FieldOp {
        same_key,
        wire,
        canon,
        ty: if values.is_some() { JsonType::ANY } else { ty },
        required: full.required,
        values,
        split: false,
        first,
        last_use: true,
    })
}
