//! The seed's evidence in every form a Manager may write it: each OAuth
//! code of the refusal family (cut or whole), each wording of the HTTP
//! status the Java and Ruby stacks use, each way a JSON body is quoted.
//!
//! DOMAIN.md: SSM On-Prem answers 403 for every refused token request and
//! the seed's own error is cut after `{"error":"inv`, so every such bundle
//! must be read as SDWAN-LIC-001 (the documented cause) with SDWAN-LIC-002
//! and SDWAN-LIC-003 named as the alternatives, and nothing else beside it.
//! The lines are the seed's verbatim fragments (classes, thread, tenant,
//! host token, times) with the cut parts filled in; the error descriptions
//! are Doorkeeper's own (config/locales/en.yml).

use triage::load_layers;
use triage::{Engine, RunOptions};

/// (code, Doorkeeper's description); `inv` is the seed's cut text.
const CODES: &[(&str, &str)] = &[
    ("invalid_grant", "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."),
    ("invalid_client", "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."),
    ("invalid_request", "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed."),
    ("invalid_scope", "The requested scope is invalid, unknown, or malformed."),
    ("invalid_resource_owner", "The provided resource owner credentials are not valid, or resource owner cannot be found."),
    ("unauthorized_client", "The client is not authorized to perform this request using this method."),
    ("inv", ""),
];

/// How the RestAPIClient error states the status; `{}` is where the body goes.
const WORDINGS: &[&str] = &[
    "Failed to get access token, response code: 403, response: {}",
    "Failed to get access token, status code: 403, body: {}",
    "Failed to get access token: 403 Forbidden: [{}]",
    "Failed to get access token: HTTP/1.1 403 Forbidden {}",
    "Failed to get access token, statusCode=403 {}",
    "Failed to get access token: Server returned HTTP response code: 403 for URL: https://10.106.66.55:8443/oauth/token",
    "Token request rejected with HTTP status 403 {}",
    "Failed to get access token {\"status\":403,\"body\":{}}",
    "Failed to get access token: Forbidden (403) {}",
    // The seed does not show the status at all: only the body below.
    "Failed to get access token",
];

/// The JSON body `{"error":"<code>",…}` quoted as a log may hold it.
fn body(code: &str, description: &str, quoting: usize) -> String {
    if code == "inv" {
        // Cut by the OCR: nothing after the code's first letters.
        return r#"{"error":"inv"#.to_string();
    }
    match quoting {
        0 => format!(r#"{{"error":"{code}","error_description":"{description}"}}"#),
        1 => format!(r#"{{"error": "{code}", "error_description": "{description}"}}"#),
        2 => format!(r#"{{\"error\":\"{code}\",\"error_description\":\"{description}\"}}"#),
        _ => {
            format!("{{&quot;error&quot;:&quot;{code}&quot;,&quot;error_description&quot;:&quot;{description}&quot;}}")
        }
    }
}

/// The seed's twelve records with this code, wording and quoting.
fn manager_log(code: &str, description: &str, wording: &str, quoting: usize) -> String {
    let body = body(code, description, quoting);
    let rest_error = wording.replace("{}", &body);
    let head = |time: &str, level: &str, class: &str| {
        format!("13-Jan-2023 17:29:{time} IST {level:<5} [um8_vManage] [{class}] (default task-24) |default| ")
    };
    [
        format!(
            "{}Received request to save Smart Account credentials",
            head("02,775", "INFO", "SmartLicensingIntegrationManager")
        ),
        format!(
            "{}Validating Smart Account credentials for user admin",
            head("02,776", "INFO", "SmartLicensingIntegrationManager")
        ),
        format!(
            "{}Getting settings for type: smartLicensing",
            head("02,780", "INFO", "AbstractSettingsManager")
        ),
        format!(
            "{}intializing on-prem REST client",
            head("02,781", "INFO", "SmartLicensingUtil")
        ),
        format!(
            "{}Getting access token for user: admin",
            head("02,781", "INFO", "SmartLicensingUtil")
        ),
        format!(
            "{}RestAPI proxy not configured",
            head("02,793", "INFO", "RestAPIClient")
        ),
        format!(
            "{}RestAPI processing POST request",
            head("02,793", "INFO", "RestAPIClient")
        ),
        format!(
            "{}URL built: https://10.106.66.55:8443/oauth/token",
            head("02,798", "INFO", "SmartLicensingUtil")
        ),
        format!(
            "{}Query parameters: grant_type=password&username=admin",
            head("02,798", "INFO", "SmartLicensingUtil")
        ),
        format!("{}{rest_error}", head("03,490", "ERROR", "RestAPIClient")),
        format!(
            "{}Failed to authenticate user - 'admin'. {body}",
            head("03,491", "ERROR", "SmartLicensingUtil")
        ),
        format!(
            "{}Failed to authenticate Smart Account credentials.: Failed to authenticate user - 'admin'. {body}",
            head("03,491", "ERROR", "SmartLicensingIntegrationRestfulResource")
        ),
    ]
    .join("\n")
        + "\n"
}

/// SSM On-Prem's side as the seed shows it: a failed upstream that nginx
/// retried, then the token request at Doorkeeper (lines dated apart).
const SSM_MESSAGES: &str = r#"Jan 13 11:13:36 SSM-On-Prem chronyd[1319]: Source 172.20.226.229 replaced with 172.20.226.230
1:M 13 Jan 2023 11:14:09.049 * 100 changes in 300 seconds. Saving...
2023/07/13 11:17:01 [error] 47#47: *1576 connect() failed (111: Connection refused) while connecting to upstream, client: 10.66.76.85, server: _, request: "POST /oauth/token HTTP/1.1", upstream: "http://172.18.0.5:3000/oauth/token", host: "10.106.66.55:8443"
2023/07/13 11:17:01 [warn] 47#47: *1576 upstream server temporarily disabled while connecting to upstream, client: 10.66.76.85, server: _, request: "POST /oauth/token HTTP/1.1", upstream: "http://172.18.0.5:3000/oauth/token", host: "10.106.66.55:8443"
[active_model_serializers] Rendered ActiveModel::Serializer::Null with Hash (0.08ms)
method=POST path=/oauth/token format=json controller=Doorkeep
10.66.76.85 - - [13/Jan/2023:11:17:01 +0000] "POST /oauth/token HTTP/1.1" 403 210 "-" "Apache-HttpClient/4.5.13 (Java/11.0.17)"
[INFO] Session expiring outcome=success
"#;

#[test]
fn every_form_of_the_seed_evidence_reads_as_lic_001_with_its_alternatives() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let kb = load_layers(true, &[], Some(&root.join("rules"))).expect("built-in rules load");
    let engine = Engine::new(kb);
    let options = RunOptions::default();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (code, description) in CODES {
        for wording in WORDINGS {
            for quoting in 0..4 {
                if *code == "inv" && quoting > 0 {
                    continue;
                }
                for with_ssm in [false, true] {
                    cases += 1;
                    let mut files = vec![(
                        "var/log/nms/vmanage-server.log".to_string(),
                        manager_log(code, description, wording, quoting),
                    )];
                    if with_ssm {
                        files.push(("ssm-onprem/var/log/messages".to_string(), SSM_MESSAGES.to_string()));
                    }
                    let report = engine.diagnose_files("matrix", &files, &options);
                    let roots: Vec<&str> = report
                        .diagnoses
                        .iter()
                        .filter(|d| d.explained_by.is_empty() && d.severity != triage::Severity::Info)
                        .map(|d| d.rule_id.as_str())
                        .collect();
                    let alternatives: Vec<&str> = report
                        .diagnoses
                        .first()
                        .map(|d| d.alternatives.iter().map(|a| a.rule_id.as_str()).collect())
                        .unwrap_or_default();
                    if roots != ["SDWAN-LIC-001"] || alternatives != ["SDWAN-LIC-002", "SDWAN-LIC-003"] {
                        failures.push(format!(
                            "code {code}, wording {wording:?}, quoting {quoting}, SSM On-Prem logs {with_ssm}: roots {roots:?}, alternatives {alternatives:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(cases > 400, "{cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} forms misread:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn codes_that_name_another_cause_do_not_read_as_lic_001() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let kb = load_layers(true, &[], Some(&root.join("rules"))).expect("built-in rules load");
    let engine = Engine::new(kb);
    for (code, description, expected) in [
        (
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
            "SDWAN-LIC-004",
        ),
        ("invalid_token", "The access token expired", "SDWAN-LIC-009"),
    ] {
        let files = vec![(
            "var/log/nms/vmanage-server.log".to_string(),
            manager_log(code, description, WORDINGS[0], 0),
        )];
        let report = engine.diagnose_files("other", &files, &RunOptions::default());
        let ids: Vec<&str> = report.diagnoses.iter().map(|d| d.rule_id.as_str()).collect();
        assert_eq!(ids.first(), Some(&expected), "{code}: {ids:?}");
        assert!(!ids.contains(&"SDWAN-LIC-001"), "{code}: {ids:?}");
    }
}

/// The twelve records with the body left out of the two licensing errors:
/// only the status wording says the request was refused.
fn manager_log_without_body(wording: &str) -> String {
    manager_log("inv", "", wording, 0)
        .lines()
        .map(|l| l.replace(r#" {"error":"inv"#, ""))
        .map(|l| l.replace(r#"{"error":"inv"#, ""))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn the_status_wording_alone_reads_as_lic_001_next_to_the_gui_error() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let engine = Engine::new(load_layers(true, &[], Some(&root.join("rules"))).expect("built-in rules load"));
    let mut failures = Vec::new();
    for wording in WORDINGS.iter().filter(|w| **w != "Failed to get access token") {
        let log = manager_log_without_body(wording);
        assert!(!log.contains("\"error\""), "{log}");
        let files = vec![("var/log/nms/vmanage-server.log".to_string(), log)];
        let report = engine.diagnose_files("status", &files, &RunOptions::default());
        let first = report.diagnoses.first().map(|d| d.rule_id.as_str());
        if first != Some("SDWAN-LIC-001") {
            failures.push(format!("{wording:?}: first {first:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bundles that look like the seed's but are not its cause (found by a
/// review): each must not read as SDWAN-LIC-001 first.
#[test]
fn look_alikes_of_the_seed_evidence_are_not_lic_001() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let engine = Engine::new(load_layers(true, &[], Some(&root.join("rules"))).expect("built-in rules load"));
    let line = |day: &str, class: &str, msg: &str| {
        format!("{day}-Jan-2023 17:29:03,490 UTC ERROR [um8_vManage] [{class}] (default task-24) |default| {msg}\n")
    };
    let gui = |day: &str, body: &str| {
        line(
            day,
            "SmartLicensingIntegrationRestfulResource",
            &format!(
                "Failed to authenticate Smart Account credentials.: Failed to authenticate user - 'admin'. {body}"
            ),
        )
    };
    // (what, files, the rule that must come first if one must)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "a proxy refusing CONNECT with 403",
            vec![(
                "var/log/nms/vmanage-server.log",
                line(
                    "13",
                    "RestAPIClient",
                    r#"Failed to get access token: java.io.IOException: Unable to tunnel through proxy. Proxy returns "HTTP/1.1 403 Forbidden""#,
                ) + &gui("13", ""),
            )],
            Some("SDWAN-NET-004"),
        ),
        (
            "online mode: Cisco's cloud refused the credentials",
            vec![
                ("license-settings.json", r#"{"mode":"online"}"#.to_string() + "\n"),
                (
                    "var/log/nms/vmanage-server.log",
                    line(
                        "13",
                        "RestAPIClient",
                        "Failed to get access token from https://cloudsso.cisco.com/as/token.oauth2: status code: 400",
                    ) + &gui("13", r#"{"error":"invalid_grant"}"#),
                ),
            ],
            None,
        ),
        (
            "an error code that is no OAuth code",
            vec![(
                "var/log/nms/vmanage-server.log",
                line(
                    "13",
                    "SmartLicensingUtil",
                    r#"Sync failed: {"error":"invalid license count"}"#,
                ) + &gui("13", ""),
            )],
            None,
        ),
    ];
    for (name, files, expected_first) in cases {
        let files: Vec<(String, String)> = files.into_iter().map(|(p, c)| (p.to_string(), c)).collect();
        let report = engine.diagnose_files(name, &files, &RunOptions::default());
        let ids: Vec<&str> = report.diagnoses.iter().map(|d| d.rule_id.as_str()).collect();
        assert!(!ids.contains(&"SDWAN-LIC-001"), "{name}: {ids:?}");
        if let Some(first) = expected_first {
            assert_eq!(ids.first(), Some(&first), "{name}: {ids:?}");
        }
    }
    // And the other way round: a failure on the way that was fixed before a
    // later refusal, and an old expired token, do not hide that refusal.
    let later_refusal = [
        line(
            "10",
            "SmartLicensingUtil",
            "Failed to get access token: java.net.UnknownHostException: ssm-onprem.example.local",
        ) + &gui("10", ""),
        line(
            "02",
            "RestAPIClient",
            r#"Sync failed: 401 Unauthorized: {"error":"invalid_token","error_description":"The access token expired"}"#,
        ),
    ];
    for earlier in later_refusal {
        let log = earlier
            + &line(
                "13",
                "RestAPIClient",
                r#"Failed to get access token: 403 Forbidden: [{"error":"invalid_grant"}]"#,
            )
            + &gui("13", r#"{"error":"invalid_grant"}"#);
        let files = vec![("var/log/nms/vmanage-server.log".to_string(), log.clone())];
        let report = engine.diagnose_files("later", &files, &RunOptions::default());
        let ids: Vec<&str> = report.diagnoses.iter().map(|d| d.rule_id.as_str()).collect();
        assert!(ids.contains(&"SDWAN-LIC-001"), "{log}\n{ids:?}");
        assert!(report.excluded.is_empty(), "{:?}", report.excluded);
    }
}
