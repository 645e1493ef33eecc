//! The generated HTML documentation in a real headless browser (Debian's
//! `chromium`): the index loads from file://, its search finds a rule by a
//! word of its title and hides the others, a rule page shows its
//! remediation. Screenshots of the index (at a phone's width) and of a rule
//! page are kept under target/docs-screenshots/ as artifacts.
//!
//! `.ci/run` installs chromium and sets TRIAGE_REQUIRE_BROWSER=1, so there
//! the test cannot pass without the browser; on a machine without chromium
//! it says so and checks nothing.

use std::path::Path;
use std::process::Command;

use crate::common;
use crate::common::stdout_of;

/// Runs headless chromium on a URL with extra arguments; its stdout.
fn browse(browser: &Path, profile: &Path, extra: &[String], url: &str) -> String {
    let out = Command::new(browser)
        .args(common::CHROMIUM_FLAGS)
        .args([
            // Time for the page's scripts to run before the DOM is taken.
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `<li>` of a rule in the index's result list.
fn row<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"rule-{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let start = dom[..start].rfind("<li").unwrap();
    let end = start + dom[start..].find("</li>").unwrap();
    &dom[start..end]
}

#[test]
fn the_site_works_in_a_headless_browser() {
    let Some(browser) = common::chromium() else {
        return;
    };
    let site = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    stdout_of(&["docs", "--format", "html", "--out", site.path().to_str().unwrap()]);
    let index = format!("file://{}/index.html", site.path().display());

    // Search by a word of a title: the proxy rule stays, others are hidden.
    let dom = browse(
        &browser,
        profile.path(),
        &["--dump-dom".into()],
        &format!("{index}?q=proxy"),
    );
    assert!(
        !row(&dom, "SDWAN-NET-004").contains("hidden"),
        "{}",
        row(&dom, "SDWAN-NET-004")
    );
    assert!(
        row(&dom, "SDWAN-LIC-005").contains("hidden"),
        "{}",
        row(&dom, "SDWAN-LIC-005")
    );
    assert!(dom.contains(" of "), "the count is shown");

    // A filter by severity.
    let dom = browse(
        &browser,
        profile.path(),
        &["--dump-dom".into()],
        &format!("{index}?severity=info"),
    );
    assert!(!row(&dom, "SDWAN-INFO-001").contains("hidden"));
    assert!(row(&dom, "SDWAN-LIC-001").contains("hidden"));

    // A rule page shows its remediation.
    let rule = format!("file://{}/rules/SDWAN-LIC-001.html", site.path().display());
    let dom = browse(&browser, profile.path(), &["--dump-dom".into()], &rule);
    assert!(dom.contains("<h2>Remediation</h2>"));
    assert!(dom.contains("Resource Owner Grant"));

    // Screenshots, kept as artifacts.
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/docs-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, url, size) in [
        ("index-phone.png", index.as_str(), "390,844"),
        ("rule.png", rule.as_str(), "1280,1600"),
    ] {
        let path = shots.join(name);
        let _ = std::fs::remove_file(&path);
        browse(
            &browser,
            profile.path(),
            &[
                format!("--screenshot={}", path.display()),
                format!("--window-size={size}"),
            ],
            url,
        );
        let png = std::fs::read(&path).unwrap_or_else(|e| panic!("no screenshot {}: {e}", path.display()));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name} is not a real screenshot"
        );
    }
}
