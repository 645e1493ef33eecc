//! The service's web page in a real headless browser (Debian's
//! `chromium`, driven over the DevTools protocol): a bundle is chosen in
//! the file input and uploaded with the page's button, the page follows
//! the job and shows the diagnoses, root cause above its symptom, with the
//! evidence lines, the remediation and a link to the rule's page, which
//! the service serves. An upload name that is markup stays text.
//! Screenshots (desktop and phone width) are kept under
//! target/serve-screenshots/.
//!
//! `.ci/run` installs chromium and sets TRIAGE_REQUIRE_BROWSER=1, so there
//! the test cannot pass without the browser.
//!
//! Only with the `serve` feature (on by default).
#![cfg(feature = "serve")]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::common;
use crate::common::server::{corpus, tar_gz, Server};

/// A headless browser with its DevTools endpoint; killed when dropped.
struct Browser {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch(binary: &Path, profile: &Path) -> Browser {
        let child = Command::new(binary)
            .args(common::CHROMIUM_FLAGS)
            .args([
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1200,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes its port and the browser's endpoint here once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.to_string(), path.to_string());
                }
            }
            assert!(Instant::now() < deadline, "chromium did not open its DevTools port");
            std::thread::sleep(Duration::from_millis(100));
        };
        let (socket, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}{path}")).expect("DevTools connects");
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        }
        Browser {
            child,
            socket,
            next_id: 0,
            session: None,
        }
    }

    /// One DevTools command; its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = session.clone().into();
        }
        self.socket.send(Message::text(message.to_string())).unwrap();
        loop {
            let reply = self.socket.read().expect("DevTools answers");
            let Ok(text) = reply.to_text() else { continue };
            let reply: Value = serde_json::from_str(text).unwrap();
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Opens a page and talks to it from now on.
    fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({ "url": url }));
        let attached = self.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        self.wait_until("document.readyState === 'complete'", "the page to load");
    }

    /// Evaluates JavaScript in the page; its value.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(result["exceptionDetails"].is_null(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    fn wait_until(&mut self, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.eval(&format!("!!({condition})")) != true {
            assert!(Instant::now() < deadline, "waited in vain for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn choose_file(&mut self, selector: &str, file: &Path) {
        let root = self.call("DOM.getDocument", json!({}));
        let node = self.call(
            "DOM.querySelector",
            json!({ "nodeId": root["root"]["nodeId"], "selector": selector }),
        );
        self.call(
            "DOM.setFileInputFiles",
            json!({ "nodeId": node["nodeId"], "files": [file.to_str().unwrap()] }),
        );
    }

    fn screenshot(&mut self, out: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(out, png).unwrap();
    }
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one browser session, step by step as a user clicks through the page"
)]
fn a_bundle_uploaded_from_the_page_shows_its_diagnoses() {
    let Some(binary) = common::chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[], &[]);
    let bundle = dir.path().join("seed-lic-001.tgz");
    std::fs::write(&bundle, tar_gz(&corpus("seed-lic-001"))).unwrap();
    // An upload whose name is markup, sent before the page opens: the
    // list must show it as text.
    let hostile = "<img src=x onerror=\"document.title='pwned'\">.tgz";
    server.upload(
        &hostile
            .replace('<', "%3C")
            .replace('>', "%3E")
            .replace('"', "%22")
            .replace(' ', "%20")
            .replace('\'', "%27")
            .replace('=', "%3D"),
        &tar_gz(&corpus("healthy")),
    );

    let profile = tempfile::tempdir().unwrap();
    let mut browser = Browser::launch(&binary, profile.path());
    // Without a token the page asks for one and shows no job.
    browser.open(&format!("{}/", server.base));
    browser.wait_until(
        "document.querySelector('#token-status') && document.querySelector('#token-status').textContent.includes('enter an API token')",
        "the token prompt",
    );
    assert_eq!(browser.eval("document.querySelectorAll('#jobs li').length"), 0);
    // A token in a link is not taken: whoever wrote the link could sign
    // the tab in as themselves.
    browser.open(&format!("{}/#token={}", server.base, server.token));
    browser.wait_until(
        "document.querySelector('#token-status') && document.querySelector('#token-status').textContent.includes('enter an API token')",
        "the token prompt again",
    );
    assert_eq!(browser.eval("String(sessionStorage.getItem('triage-token'))"), "null");
    // A token typed in is kept in the tab.
    browser.eval(&format!(
        "document.querySelector('#token').value = '{}'; document.querySelector('#token-form').requestSubmit(); 'ok'",
        server.token
    ));
    browser.wait_until(
        "document.querySelector('#token-status') && document.querySelector('#token-status').textContent.includes('token set')",
        "the token to be taken",
    );
    assert_eq!(
        browser.eval("sessionStorage.getItem('triage-token')"),
        server.token.as_str()
    );
    browser.wait_until("document.querySelectorAll('#jobs li').length === 1", "the job list");
    assert_eq!(
        browser.eval("document.querySelector('#jobs li').firstChild.textContent"),
        hostile
    );
    assert_eq!(browser.eval("document.querySelectorAll('#jobs img').length"), 0);

    browser.choose_file("#file", &bundle);
    browser.eval("document.querySelector('#upload').click()");
    browser.wait_until(
        "document.querySelector('#job-status') && document.querySelector('#job-status').textContent === 'done'",
        "the uploaded bundle to be diagnosed",
    );
    browser.wait_until("document.querySelector('#diagnosis-SDWAN-LIC-001')", "the diagnoses");
    assert!(browser.eval("location.search").as_str().unwrap().starts_with("?job="));

    let text = browser.eval("document.querySelector('#result').innerText");
    let text = text.as_str().unwrap();
    assert!(text.contains("seed-lic-001.tgz"), "{text}");
    assert!(text.contains("Remediation"), "{text}");
    assert!(text.contains("vmanage-server.log:10"), "{text}");
    // The verdict first, the alternatives under the cause, no collection list
    // beyond what would decide something.
    assert!(
        browser
            .eval("document.querySelector('#result p').textContent")
            .as_str()
            .unwrap()
            .starts_with("Cause: SDWAN-LIC-001"),
        "{text}"
    );
    assert!(text.contains("Also possible: SDWAN-LIC-002"), "{text}");
    assert!(text.contains("Tell apart:"), "{text}");
    // The root cause comes first; its symptom is under it, indented.
    let order = browser.eval("[...document.querySelectorAll('#result .diagnosis[id]')].map(d => d.id + (d.classList.contains('symptom') ? ' symptom' : ''))");
    assert_eq!(order[0], "diagnosis-SDWAN-LIC-001");
    assert_eq!(order[1], "diagnosis-SDWAN-SYM-001 symptom");
    // The remediation's Markdown emphasis is shown as such.
    assert_eq!(
        browser.eval("document.querySelector('#diagnosis-SDWAN-LIC-001 .remediation strong').textContent"),
        "API Toolkit"
    );
    // Matched text is highlighted.
    assert_ne!(
        browser.eval("document.querySelectorAll('#diagnosis-SDWAN-LIC-001 mark').length"),
        0
    );

    let link = browser.eval("document.querySelector('#diagnosis-SDWAN-LIC-001 .rule-link').getAttribute('href')");
    assert_eq!(link, "/docs/rules/SDWAN-LIC-001.html");
    browser.screenshot(&screenshots().join("result.png"));
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true }),
    );
    browser.screenshot(&screenshots().join("result-phone.png"));

    // Text from the bundle is shown as text: an evidence line holding
    // markup, with letters beyond ASCII before its highlights.
    let hostile_bundle = dir.path().join("hostile");
    copy_dir(&corpus("ssm-onprem-001-upstream-down"), &hostile_bundle);
    std::fs::write(
        hostile_bundle.join("ssm-onprem/var/log/nginx/error.log"),
        "2023/04/18 08:50:31 [error] 47#47: *1576 connect() failed — é ü (111: Connection refused) while connecting to upstream, client: 192.168.10.1, server: ssm-onprem.example.local, request: \"POST /oauth/token?<img src=x onerror=document.title='pwned'> HTTP/1.1\", upstream: \"http://172.18.0.5:3000/oauth/token\", host: \"10.106.66.55:8443\"\n",
    )
    .unwrap();
    let hostile_archive = dir.path().join("hostile.tgz");
    std::fs::write(&hostile_archive, tar_gz(&hostile_bundle)).unwrap();
    browser.choose_file("#file", &hostile_archive);
    browser.eval("document.querySelector('#upload').click()");
    browser.wait_until(
        "document.querySelector('#diagnosis-SSM-ONPREM-001')",
        "the hostile bundle's diagnosis",
    );
    assert_eq!(browser.eval("document.querySelectorAll('#result img').length"), 0);
    let evidence = browser.eval("document.querySelector('#diagnosis-SSM-ONPREM-001 .evidence').textContent");
    assert!(evidence.as_str().unwrap().contains("<img src=x onerror="), "{evidence}");
    let marks =
        browser.eval("[...[...document.querySelectorAll('#diagnosis-SSM-ONPREM-001 .evidence > div')].find(d => d.textContent.includes('connect() failed')).querySelectorAll('mark')].map(m => m.textContent)");
    assert_eq!(
        marks,
        json!([
            "(111: Connection refused)",
            "while connecting to upstream",
            "/oauth/token"
        ])
    );
    assert_ne!(browser.eval("document.title"), "pwned");

    // The link opens the rule's page.
    browser.eval("document.querySelector('#diagnosis-SSM-ONPREM-001 .rule-link').click()");
    browser.wait_until(
        "location.pathname === '/docs/rules/SSM-ONPREM-001.html' && document.readyState === 'complete' && document.body.innerText.includes('Remediation')",
        "the rule page",
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/serve-screenshots")
}
