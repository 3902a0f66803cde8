//! The console in a real browser: Debian's Chromium driven over WebDriver (chromedriver,
//! `fantoccini`), against a gateway the test starts with real clients of three dialects
//! and a real webhook receiver. Log in; the overview counts the clients; a message
//! appears in the traffic tail and opens in every dialect; the translate view turns a
//! Salala `sendMessage` into the NexusChat envelope; a dead letter is replayed from the
//! webhooks view and the receiver gets it; a user's sessions are found and disconnected.
//! A screenshot of each view is saved under `target/console-screenshots/`. Without a
//! login, or without the CSRF token, the console refuses.

use crate::hooks::{Receiver, endpoint};
use crate::live::{Client, Driver, Live};
use crate::support::request as http;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::json;
use std::time::{Duration, Instant};

const PASSWORD: &str = "console-pw";

async fn gateway(rx: &Receiver) -> Live {
    let url = rx.url();
    Live::start_with(move |c| {
        c.console.password = PASSWORD.into();
        let mut master = endpoint("master", &url);
        master.events = vec!["message.created".into()];
        c.webhook = vec![master];
        c.webhooks.allow = vec!["127.0.0.1".into()];
        c.webhooks.retry = vec![Duration::from_millis(20); 1];
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_login_or_its_csrf_token_the_console_refuses() {
    let rx = Receiver::start(Duration::ZERO).await;
    let live = gateway(&rx).await;
    let api = live.addrs()[0];
    let (s, r) = http(api, "GET", "/console", "", "").await;
    assert_eq!(s, 303, "{r}");
    assert!(r.contains("location: /console/login"), "{r}");
    let (s, _) = http(api, "GET", "/console/api/overview", "", "").await;
    assert_eq!(s, 401);
    let (s, _) = http(api, "GET", "/console/api/stream", "", "").await;
    assert_eq!(s, 401);
    // An action without the session cookie.
    let (s, _) = http(api, "POST", "/console/api/users/u1/disconnect", "", "").await;
    assert_eq!(s, 401);
    let (s, _) = http(api, "POST", "/console/api/webhooks/dead/replay", "", "").await;
    assert_eq!(s, 401);
    let form = "application/x-www-form-urlencoded";
    let (s, _) = http(
        api,
        "POST",
        "/console/login",
        &format!("Content-Type: {form}\r\n"),
        "password=wrong",
    )
    .await;
    assert_eq!(s, 401);
    let (s, r) = http(
        api,
        "POST",
        "/console/login",
        &format!("Content-Type: {form}\r\n"),
        &format!("password={PASSWORD}"),
    )
    .await;
    assert_eq!(s, 303, "{r}");
    let cookie_line = r
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(cookie_line.contains("HttpOnly"), "{cookie_line}");
    assert!(cookie_line.contains("SameSite=Strict"), "{cookie_line}");
    let cookie = cookie_line
        .split_once(':')
        .map(|(_, v)| v.trim())
        .and_then(|v| v.split(';').next())
        .expect("name=value")
        .to_string();
    let with = format!("Cookie: {cookie}\r\n");
    let (s, _) = http(api, "GET", "/console/api/overview", &with, "").await;
    assert_eq!(s, 200);
    // An action without the CSRF token: refused, and nothing done.
    let (s, r) = http(api, "POST", "/console/api/users/u1/disconnect", &with, "").await;
    assert_eq!(s, 403, "{r}");
    let (s, _) = http(api, "POST", "/console/api/webhooks/dead/replay", &with, "").await;
    assert_eq!(s, 403);
    // The page carries the token; with it the action is done.
    let (_, page) = http(api, "GET", "/console", &with, "").await;
    let csrf = page
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page's token")
        .to_string();
    let (s, r) = http(
        api,
        "POST",
        "/console/api/translate",
        &format!("{with}X-Console-Csrf: {csrf}\r\n"),
        &json!({"from": "salala", "to": "nexus", "frame": r#"["typing",{"conversationId":"c"}]"#})
            .to_string(),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert!(r.contains("TYPING"), "{r}");
    // Logged out: the cookie opens nothing.
    let (s, _) = http(
        api,
        "POST",
        "/console/logout",
        &format!("{with}X-Console-Csrf: {csrf}\r\n"),
        "",
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = http(api, "GET", "/console/api/overview", &with, "").await;
    assert_eq!(s, 401);
}

/// chromedriver on a free port, ended with the test.
struct ChromeDriver {
    child: tokio::process::Child,
    port: u16,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver is installed (scripts/test installs Debian's chromium-driver)");
        let t0 = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ChromeDriver { child, port }
    }

    async fn browser(&self) -> Browser {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1280,900"]}),
        );
        ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Waits until `f` finds what it looks for (the page updates once a second).
async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let t0 = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn text_of(b: &Browser, css: &str) -> Option<String> {
    b.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn screenshot(b: &Browser, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("artifact directory");
    let png = b.screenshot().await.expect("screenshot");
    assert!(png.len() > 1000, "a real picture");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser() {
    let rx = Receiver::start(Duration::ZERO).await;
    *rx.then.lock().expect("then") = 500;
    let live = gateway(&rx).await;
    let base = live.api();
    let cd = ChromeDriver::start().await;
    let b = cd.browser().await;

    // Log in.
    b.goto(&format!("{base}/console")).await.expect("goto");
    assert!(
        b.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/console/login")
    );
    b.find(Locator::Id("login-password"))
        .await
        .expect("password field")
        .send_keys(PASSWORD)
        .await
        .expect("typed");
    b.find(Locator::Id("login-submit"))
        .await
        .expect("button")
        .click()
        .await
        .expect("clicked");
    until("the console", || async {
        text_of(&b, "#live").await.filter(|t| t.starts_with("live"))
    })
    .await;

    // Clients of three dialects: the overview counts them.
    let driver = Driver::start().await;
    let mut nexus = Client::connect(
        &live,
        &driver,
        "nexus",
        "websocket",
        "nx1",
        Some(&["room1"]),
    )
    .await;
    let _salala = Client::connect(
        &live,
        &driver,
        "salala",
        "websocket",
        "sa1",
        Some(&["room1"]),
    )
    .await;
    let _clerk = Client::connect(
        &live,
        &driver,
        "clerk",
        "websocket",
        "cl1",
        Some(&["room1"]),
    )
    .await;
    for d in ["nexus", "salala", "clerk"] {
        until(d, || async {
            text_of(
                &b,
                &format!("#conn-table tr[data-dialect=\"{d}\"] td.count"),
            )
            .await
            .filter(|n| n == "1")
        })
        .await;
    }
    screenshot(&b, "overview").await;

    // A message sent appears in the traffic tail, and opens in every dialect.
    b.find(Locator::Id("tab-traffic"))
        .await
        .expect("tab")
        .click()
        .await
        .expect("click");
    nexus
        .emit_wire(
            "SEND_MSG",
            json!({"roomId": "room1", "type": "TEXT", "contentText": "hello console"}),
            false,
        )
        .await;
    let row = until("the message in the tail", || async {
        let rows = b.find_all(Locator::Css("#traffic-rows tr")).await.ok()?;
        for r in rows {
            if r.text().await.ok()?.contains("message.created") {
                return Some(r);
            }
        }
        None
    })
    .await;
    row.click().await.expect("open the sample");
    let salala_frame = until("the sample in Salala's words", || async {
        text_of(&b, "#tf-detail pre[data-dialect=\"salala\"]").await
    })
    .await;
    assert!(salala_frame.contains("newMessage"), "{salala_frame}");
    assert!(
        !salala_frame.contains("hello console"),
        "no content without console.show_content: {salala_frame}"
    );
    screenshot(&b, "traffic").await;

    // Translate: a Salala sendMessage becomes the NexusChat envelope.
    b.find(Locator::Id("tab-translate"))
        .await
        .expect("tab")
        .click()
        .await
        .expect("click");
    until("the dialects", || async {
        b.find(Locator::Css("#tr-from option[value=\"salala\"]"))
            .await
            .ok()
    })
    .await;
    b.find(Locator::Id("tr-go"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let out = until("the translation", || async {
        text_of(&b, "#tr-output").await.filter(|t| !t.is_empty())
    })
    .await;
    let env: serde_json::Value = serde_json::from_str(&out).expect("one envelope");
    assert_eq!(env["event"], "SEND_MSG", "{out}");
    assert_eq!(env["data"]["roomId"], "c-1", "{out}");
    assert_eq!(env["data"]["contentText"], "hey there", "{out}");
    screenshot(&b, "translate").await;

    // Webhooks: the message's webhook failed into a dead letter; replayed from the view.
    let t0 = Instant::now();
    while rx.got().len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the webhook was attempted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    *rx.then.lock().expect("then") = 200;
    let before = rx.got().len();
    b.find(Locator::Id("tab-webhooks"))
        .await
        .expect("tab")
        .click()
        .await
        .expect("click");
    let replay = until("a dead letter", || async {
        b.find(Locator::Css("#wh-dead button.replay")).await.ok()
    })
    .await;
    screenshot(&b, "webhooks").await;
    replay.click().await.expect("replay");
    let got = rx.wait_for(before + 1, Duration::from_secs(10)).await;
    let last = got.last().expect("the replayed delivery").json();
    assert_eq!(last["type"], "message.created", "{last}");
    until("the replay said", || async {
        text_of(&b, "#wh-said")
            .await
            .filter(|t| t.contains("replayed 1"))
    })
    .await;

    // Sessions: find a user, disconnect it.
    b.find(Locator::Id("tab-sessions"))
        .await
        .expect("tab")
        .click()
        .await
        .expect("click");
    b.find(Locator::Id("sess-user"))
        .await
        .expect("field")
        .send_keys("nx1")
        .await
        .expect("typed");
    b.find(Locator::Id("sess-go"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let rooms = until("the user's session", || async {
        text_of(&b, "#sess-table tbody tr")
            .await
            .filter(|t| t.contains("nexus"))
    })
    .await;
    assert!(rooms.contains("room1"), "{rooms}");
    screenshot(&b, "sessions").await;
    b.find(Locator::Id("sess-disconnect"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let closed = nexus
        .next(|r| r.name == "__close__" || r.name == "__disconnect__")
        .await;
    assert!(closed.is_some(), "the user was disconnected");

    // A phone-sized window still shows the views.
    b.set_window_size(390, 844).await.expect("resize");
    b.find(Locator::Id("tab-overview"))
        .await
        .expect("tab")
        .click()
        .await
        .expect("click");
    screenshot(&b, "overview-phone").await;
    b.close().await.expect("closed");
}
