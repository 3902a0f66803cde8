//! The `switchboard` binary as a user runs it: translate with good and bad lines, check,
//! dialects and matrix.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn switchboard(args: &[&str], stdin: &[u8]) -> Output {
    switchboard_env(args, stdin, &[])
}

fn switchboard_env(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_remove("SWITCHBOARD_MAPPINGS")
        .env_remove("AUTH_JWT_SECRET")
        .env_remove("JWT_SECRET")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("binary runs");
    let _ = writer.join();
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn translate_reports_bad_lines_and_goes_on() {
    let deep = format!(
        "[\"typing\",{{\"conversationId\":{}{}}}]",
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let huge = format!(
        "[\"typing\",{{\"conversationId\":\"{}\"}}]",
        "x".repeat(10 << 20)
    );
    let lines = [
        r#"["typing",{"conversationId":"c1"}]"#.to_string(),
        "this is not json".to_string(),
        r#"{"event":"TYPING"}"#.to_string(),
        r#"["noSuchEvent",{}]"#.to_string(),
        r#"["sendMessage",{"conversationId":["not","an","id"],"content":"x"}]"#.to_string(),
        deep,
        huge,
        String::new(),
        r#"["markMessagesAsRead",{"messageIds":["a","b"]}]"#.to_string(),
    ];
    let input = lines.join("\n");
    let out = switchboard(
        &["translate", "--from", "salala", "--to", "nexus"],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let events: Vec<&str> = stdout.lines().collect();
    assert_eq!(events.len(), 3, "{stdout}");
    assert!(events[0].contains("\"event\":\"TYPING\"") && events[0].contains("\"isTyping\":true"));
    assert!(events[1].contains("\"ACK\"") && events[1].contains("\"a\""));
    assert!(events[2].contains("\"ACK\"") && events[2].contains("\"b\""));
    let stderr = text(&out.stderr);
    let errs: Vec<&str> = stderr.lines().collect();
    assert_eq!(errs.len(), 6, "{stderr}");
    assert!(errs[0].starts_with("line 2: not valid JSON"), "{stderr}");
    assert!(
        errs[1].starts_with("line 3: wrong framing for socketio"),
        "{stderr}"
    );
    assert!(
        errs[2].starts_with("line 4: unknown event `noSuchEvent`"),
        "{stderr}"
    );
    assert!(
        errs[3].starts_with("line 5: field `conversationId` of `sendMessage` must be"),
        "{stderr}"
    );
    assert!(
        errs[4].starts_with("line 6: not valid JSON: recursion limit"),
        "{stderr}"
    );
    assert!(
        errs[5].starts_with("line 7: line of 10485")
            && errs[5].contains("over the 1048576-byte limit"),
        "{stderr}"
    );
}

#[test]
fn translate_preserves_order_across_threads() {
    let mut input = String::new();
    for i in 0..20_000 {
        input.push_str(&format!("[\"typing\",{{\"conversationId\":\"c{i}\"}}]\n"));
    }
    let out = switchboard(
        &[
            "translate",
            "--from",
            "salala",
            "--to",
            "chat-service",
            "--threads",
            "4",
        ],
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for (i, line) in stdout.lines().enumerate() {
        assert_eq!(
            line,
            format!("[\"typing:start\",{{\"conversationId\":\"c{i}\"}}]")
        );
    }
    assert_eq!(stdout.lines().count(), 20_000);
}

#[test]
fn translate_from_canonical_and_back() {
    let out = switchboard(
        &["translate", "--from", "chat-service", "--to", "canonical"],
        br#"["message:edit",{"messageId":"m1","content":"new"}]"#,
    );
    assert!(out.status.success());
    let canonical = out.stdout;
    let back = switchboard(
        &["translate", "--from", "canonical", "--to", "chat-service"],
        &canonical,
    );
    assert!(back.status.success(), "{}", text(&back.stderr));
    assert_eq!(
        text(&back.stdout).trim(),
        r#"["message:edit",{"messageId":"m1","content":"new"}]"#
    );
}

#[test]
fn unknown_dialect_is_a_startup_error() {
    let out = switchboard(&["translate", "--from", "klingon", "--to", "nexus"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown dialect `klingon`"));
}

#[test]
fn check_ships_valid_mappings_and_refuses_bad_ones() {
    let ok = switchboard(&["check"], b"");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("ok: 6 dialects"));

    let dir = std::env::temp_dir().join(format!("sb-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/canonical.toml");
    std::fs::copy(src, dir.join("canonical.toml")).expect("copy vocabulary");
    std::fs::write(
        dir.join("broken.toml"),
        "[dialect]\nname = \"broken\"\nsystem = \"x\"\nframing = \"socketio\"\n\n[[event]]\nwire = \"a\"\ndir = \"up\"\ncanonical = \"message.sned\"\n\n[[event]]\nwire = \"b\"\ndir = \"up\"\ncanonical = \"room.join\"\n",
    )
    .expect("write");
    let bad = switchboard(&["check", dir.to_str().expect("utf-8 path")], b"");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.contains("broken.toml:9:13: [unknown-canonical-event]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("broken.toml:14:13: [unmapped-required]"),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn dialects_and_matrix() {
    let d = switchboard(&["dialects", "--markdown"], b"");
    assert!(d.status.success());
    let md = text(&d.stdout);
    assert_eq!(md.lines().count(), 2 + 6, "{md}");
    assert!(md.contains("| `nexus` | NexusChat Engine | envelope | websocket |"));

    let m = switchboard(&["matrix"], b"");
    assert!(m.status.success());
    let t = text(&m.stdout);
    assert!(t.contains("nexus → clerk"));
    assert!(
        t.contains("up   message.send (SEND_MSG → message:send; lost: attachments.0.height, attachments.0.url, attachments.0.width, kind)"),
        "{t}"
    );
    assert!(
        t.contains("typing.start (TYPING ✗ dialect clerk cannot express `typing.start` (up): Clerk chat has no typing indicator)"),
        "{t}"
    );

    let mm = switchboard(&["matrix", "--markdown"], b"");
    assert!(text(&mm.stdout).contains("| from \\ to |"));
}

#[test]
fn token_mints_what_the_secret_verifies() {
    use switchboard::auth::Authenticator;
    let args = [
        "token", "--user", "u-42", "--name", "Ada", "--rooms", "r1,r2", "--ttl", "10m",
    ];
    let out = switchboard_env(&args, b"", &[("JWT_SECRET", "s3cret")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).is_empty(),
        "no warning with a real secret"
    );
    let token = text(&out.stdout).trim().to_string();
    let auth = Authenticator::hs256("s3cret", std::time::Duration::ZERO);
    let id = auth.verify(&token).expect("verifies");
    assert_eq!(id.user.id, "u-42");
    assert_eq!(id.user.name.as_deref(), Some("Ada"));
    assert_eq!(id.rooms, Some(vec!["r1".to_string(), "r2".to_string()]));
    assert!(
        Authenticator::hs256("other", std::time::Duration::ZERO)
            .verify(&token)
            .is_err()
    );

    // AUTH_JWT_SECRET wins over JWT_SECRET; the development secret warns loudly.
    let out = switchboard_env(
        &["token", "--user", "u"],
        b"",
        &[("AUTH_JWT_SECRET", "a"), ("JWT_SECRET", "b")],
    );
    let token = text(&out.stdout).trim().to_string();
    assert!(
        Authenticator::hs256("a", std::time::Duration::ZERO)
            .verify(&token)
            .is_ok()
    );
    let out = switchboard(&["token", "--user", "u"], b"");
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("WARNING: signing with the shipped development secret"));
}

/// `token --key` mints with a private key; `auth check` says whether a provider of the
/// configuration accepts a token, and which check fails when it does not.
#[test]
fn tokens_minted_with_a_key_are_checked_by_the_provider_that_holds_it() {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let dir = std::env::temp_dir().join(format!("sb-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let key = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
    let pem = dir.join("es256.pem");
    std::fs::write(
        &pem,
        key.to_pkcs8_pem(LineEnding::LF).expect("pem").as_bytes(),
    )
    .expect("write");
    let signer = switchboard::auth::Signer::from_pem_file(
        &pem,
        jsonwebtoken::Algorithm::ES256,
        Some("k1".into()),
    )
    .expect("signer");
    let jwks = dir.join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&switchboard::auth::Signer::key_set(&[&signer]).expect("set"))
            .expect("json"),
    )
    .expect("write");
    let config = dir.join("auth.toml");
    let base = switchboard::config::DEFAULT_TOML;
    std::fs::write(
        &config,
        format!(
            "{base}\n[[auth.provider]]\nname = \"app\"\nkind = \"jwks\"\njwks_file = \"{}\"\nauthorized_parties = [\"https://app.example\"]\n",
            jwks.display()
        ),
    )
    .expect("write");
    let pem_s = pem.to_string_lossy().into_owned();
    let cfg_s = config.to_string_lossy().into_owned();
    let mint = |extra: &[&str]| {
        let mut args = vec![
            "token", "--user", "user_1", "--key", &pem_s, "--alg", "ES256", "--kid", "k1",
        ];
        args.extend_from_slice(extra);
        let out = switchboard(&args, b"");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    let good = mint(&["--claim", "azp=https://app.example"]);
    let check = |token: &str, extra: &[&str]| {
        let mut args = vec!["auth", "check", "--config", &cfg_s, "--provider", "app"];
        args.extend_from_slice(extra);
        args.push(token);
        switchboard(&args, b"")
    };
    let out = check(&good, &[]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("accepted by `app`: user `user_1`"));
    let out = check(&good, &["--user-id", "user_2"]);
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("refused (user_mismatch)"));
    let out = check(&mint(&["--claim", "azp=https://evil.example"]), &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("refused (authorized_party)"),
        "{}",
        text(&out.stdout)
    );
    let out = check(
        &mint(&["--claim", "azp=https://app.example", "--claim", "exp=1000"]),
        &[],
    );
    assert!(
        text(&out.stdout).contains("refused (expired)"),
        "{}",
        text(&out.stdout)
    );
    let out = check("not-a-token", &[]);
    assert!(
        text(&out.stdout).contains("refused (malformed)"),
        "{}",
        text(&out.stdout)
    );
    let out = switchboard(
        &[
            "auth",
            "check",
            "--config",
            &cfg_s,
            "--provider",
            "nope",
            "x",
        ],
        b"",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no auth provider `nope`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_check_lists_every_bad_key_and_value_before_anything_starts() {
    let dir = std::env::temp_dir().join(format!("sb-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "instanse = \"typo\"\n[limits]\nmax_payload = \"5k\"\nburst = 0\n[hub]\nmembership = \"closed\"\n[[listener]]\nport = 70000\nroutes = []\n",
    )
    .expect("write");
    let out = switchboard(&["config", "check", file.to_str().expect("path")], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for needle in [
        "line 1: unknown key `instanse`",
        "line 3: `limits.max_payload`",
        "line 6: `hub.membership`",
        "line 8: `listener[0].port`",
    ] {
        assert!(err.contains(needle), "{needle} in:\n{err}");
    }
    // Values that parse but make no sense, every one, with the environment's too.
    std::fs::write(
        &file,
        "[limits]\nburst = 0\nmax_rooms = 0\n[[listener]]\nport = 1\n",
    )
    .expect("write");
    let out = switchboard_env(
        &["config", "check", file.to_str().expect("path")],
        b"",
        &[("PORT", "x")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("limits.burst") && err.contains("limits.max_rooms"),
        "{err}"
    );
    // serve refuses the same file before opening a port.
    let out = switchboard(&["serve", "--config", file.to_str().expect("path")], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("limits.burst"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_default_and_check_print_the_effective_configuration_redacted() {
    let out = switchboard(&["config", "default"], b"");
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), switchboard::config::DEFAULT_TOML);
    let out = switchboard_env(
        &["config", "check"],
        b"",
        &[("AUTH_JWT_SECRET", "hunter2"), ("PORT", "4100")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        !shown.contains("hunter2") && shown.contains("<redacted>"),
        "{shown}"
    );
    assert!(shown.contains("port = 4100"), "{shown}");
}

#[test]
fn the_readmes_configuration_reference_is_the_generated_one() {
    let out = switchboard(&["config", "reference"], b"");
    assert!(out.status.success());
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let start = readme
        .find("<!-- config-reference:start -->\n")
        .expect("start marker")
        + 32;
    let end = readme
        .find("<!-- config-reference:end -->")
        .expect("end marker");
    assert_eq!(
        &readme[start..end],
        text(&out.stdout),
        "run `switchboard config reference` and paste it into the README"
    );
}
