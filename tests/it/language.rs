//! One tested example for every construct of the condition language, on
//! small inline bundles. Each case is a rule (condition and queries) run
//! with the built-in formats and macros; the docs (docs/LANGUAGE.md) show
//! the same constructs.

use crate::common;

const NGINX: &str = "\
2023/04/18 08:50:31 [error] 47#47: *1576 connect() failed (111: Connection refused) while connecting to upstream, client: 192.168.10.1, server: ssm, request: \"POST /oauth/token HTTP/1.1\", upstream: \"http://172.18.0.5:3000/oauth/token\", host: \"ssm:8443\"
2023/04/18 08:50:31 [warn] 47#47: *1576 upstream server temporarily disabled while connecting to upstream, client: 192.168.10.1, server: ssm, request: \"POST /oauth/token HTTP/1.1\", upstream: \"http://172.18.0.5:3000/oauth/token\", host: \"ssm:8443\"
2023/04/18 08:51:18 [error] 47#47: *1581 connect() failed (111: Connection refused) while connecting to upstream, client: 192.168.10.7, server: ssm, request: \"POST /oauth/token HTTP/1.1\", upstream: \"http://172.18.0.5:3000/oauth/token\", host: \"ssm:8443\"
";

const MESSAGES: &str = "\
Apr 18 08:50:40 ssm backend[2211]: method=POST path=/oauth/token format=json controller=Doorkeeper::TokensController action=create status=403 duration=36.42
Apr 18 08:59:00 ssm redis[1]: 1:M 18 Apr 2023 08:59:00.049 * Background saving started by pid 4617
";

const TCPDUMP: &str = "\
10:41:12.100000 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 60)
    192.168.10.1.41522 > 10.106.66.55.8443: Flags [S], cksum 0xfadb (incorrect -> 0x3a7c), seq 3120449711, win 29200, length 0
10:41:13.100000 IP (tos 0x0, ttl 64, id 2, offset 0, flags [DF], proto TCP (6), length 60)
    192.168.10.1.41522 > 10.106.66.55.8443: Flags [S], cksum 0xfadb (incorrect -> 0x3a7c), seq 3120449711, win 29200, length 0
";

const VERSION: &str = "um8_vManage# show version\n20.6.3\n";

/// Runs a rule with the given condition and queries over the files,
/// collected at 2023-04-18T09:00:00Z; returns `hit`, `no_hit` or
/// `inconclusive`, and the message.
fn run(condition: &str, queries: &[(&str, &str)], message: &str, files: &[(&str, &str)]) -> (String, String) {
    let files: Vec<(&str, String)> = files.iter().map(|(p, c)| (*p, c.to_string())).collect();
    let out = common::run(&[], condition, queries, message, &files, Some("2023-04-18T09:00:00Z"));
    (out.hit, out.message)
}

fn all_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("var/log/nginx/error.log", NGINX),
        ("var/log/messages", MESSAGES),
        ("tcpdump-eth0.txt", TCPDUMP),
        ("show-version.txt", VERSION),
    ]
}

fn outcome(condition: &str, queries: &[(&str, &str)]) -> String {
    run(condition, queries, "m", &all_files()).0
}

const REFUSED: (&str, &str) = ("refused", r#"nginx_error where message contains "Connection refused""#);
const TOKEN: (&str, &str) = ("token", r#"lograge where path == "/oauth/token""#);
const SYN: (&str, &str) = ("syn", r#"tcpdump where text contains "Flags [S]," and flags == "S""#);

#[test]
fn any_and_bare_query_names() {
    assert_eq!(outcome("refused", &[REFUSED]), "hit");
    assert_eq!(outcome("any refused", &[REFUSED]), "hit");
    assert_eq!(outcome("exists refused", &[REFUSED]), "hit");
    assert_eq!(outcome("any (nginx_error where level == \"crit\")", &[]), "no_hit");
}

#[test]
fn none_of_a_query() {
    assert_eq!(outcome("no refused", &[REFUSED]), "no_hit");
    assert_eq!(outcome("none (nginx_error where level == \"crit\")", &[]), "hit");
}

#[test]
fn count_compared_with_a_number() {
    assert_eq!(outcome("count(refused) >= 2", &[REFUSED]), "hit");
    assert_eq!(outcome("count(refused) > 2", &[REFUSED]), "no_hit");
    assert_eq!(outcome("count(refused) == 2", &[REFUSED]), "hit");
}

#[test]
fn distinct_values_of_a_field() {
    // Two SYNs with the same seq: a retransmission.
    assert_eq!(outcome("distinct(syn, seq) < count(syn)", &[SYN]), "hit");
    assert_eq!(outcome("distinct(refused, client) == 2", &[REFUSED]), "hit");
}

const ACCESS: &str = "\
192.168.10.7 - - [18/Apr/2023:08:50:40 +0000] \"POST /oauth/token HTTP/1.1\" 403 81 \"-\" \"Java/17\"
192.168.10.9 - - [18/Apr/2023:08:52:02 +0000] \"POST /oauth/token HTTP/1.1\" 403 81 \"-\" \"Java/17\"
";

#[test]
fn distinct_values_across_several_queries() {
    let mut files = all_files();
    files.push(("var/log/nginx/access.log", ACCESS));
    let token_posts = ("posts", r#"nginx_access where path == "/oauth/token""#);
    let count = |condition: &str| run(condition, &[REFUSED, token_posts], "m", &files).0;
    // nginx_error saw 192.168.10.1 and .7, the access log .7 and .9: three together.
    assert_eq!(count("distinct(refused + posts, client) == 3"), "hit");
    // The access log holds a client the error log lacks…
    assert_eq!(
        count("distinct(refused + posts, client) > distinct(refused, client)"),
        "hit"
    );
    // …and the other way round, too.
    assert_eq!(
        count("distinct(posts + refused, client) > distinct(posts, client)"),
        "hit"
    );
    // One query twice adds nothing.
    assert_eq!(count("distinct(refused + refused, client) == 2"), "hit");
    // Without an access log (nor a syslog file that could embed one) the
    // count cannot be known.
    let only_nginx = [("var/log/nginx/error.log", NGINX)];
    assert_eq!(
        run(
            "distinct(refused + posts, client) > 1",
            &[REFUSED, token_posts],
            "m",
            &only_nginx
        )
        .0,
        "inconclusive"
    );
}

#[test]
fn all_matches_satisfy_a_predicate() {
    assert_eq!(outcome("all syn have src == 192.168.10.1", &[SYN]), "hit");
    assert_eq!(outcome("all refused have client == 192.168.10.1", &[REFUSED]), "no_hit");
}

#[test]
fn time_windows_ordering_and_collection_time() {
    assert_eq!(outcome("token within 30s of refused", &[REFUSED, TOKEN]), "hit");
    assert_eq!(outcome("token within 5s of refused", &[REFUSED, TOKEN]), "no_hit");
    assert_eq!(outcome("refused then token within 10s", &[REFUSED, TOKEN]), "hit");
    assert_eq!(outcome("token then refused within 10s", &[REFUSED, TOKEN]), "no_hit");
    assert_eq!(outcome("refused within 15m of collection", &[REFUSED]), "hit");
    assert_eq!(outcome("refused within 5m of collection", &[REFUSED]), "no_hit");
}

#[test]
fn boolean_operators_and_precedence() {
    assert_eq!(outcome("refused and token", &[REFUSED, TOKEN]), "hit");
    assert_eq!(outcome("no refused or token", &[REFUSED, TOKEN]), "hit");
    // `not` binds tighter than `and`, `and` tighter than `or`.
    assert_eq!(outcome("not refused and token", &[REFUSED, TOKEN]), "no_hit");
    assert_eq!(outcome("not (refused and no token)", &[REFUSED, TOKEN]), "hit");
    assert_eq!(outcome("refused or token and no token", &[REFUSED, TOKEN]), "hit");
}

#[test]
fn missing_sources_make_a_rule_inconclusive() {
    let only_nginx = [("var/log/nginx/error.log", NGINX)];
    let q = [
        REFUSED,
        ("redis_saves", r#"redis where msg contains "Background saving""#),
    ];
    assert_eq!(run("refused and redis_saves", &q, "m", &only_nginx).0, "inconclusive");
    // Kleene logic: false and unknown is false; true or unknown is true.
    assert_eq!(run("no refused and redis_saves", &q, "m", &only_nginx).0, "no_hit");
    assert_eq!(run("refused or redis_saves", &q, "m", &only_nginx).0, "hit");
    // `any of` is decided by the alternatives the bundle can answer.
    assert_eq!(
        run("any of (no refused, redis_saves)", &q, "m", &only_nginx).0,
        "no_hit"
    );
}

#[test]
fn embedded_formats_read_lines_inside_syslog() {
    // The Redis and lograge lines of /var/log/messages are records of
    // `redis` and `lograge` too.
    assert_eq!(
        outcome(
            "any (redis where level == \"*\" and msg contains \"Background saving\")",
            &[]
        ),
        "hit"
    );
    assert_eq!(outcome("any (lograge where status == 403)", &[]), "hit");
}

#[test]
fn comparison_operators_on_typed_fields() {
    assert_eq!(outcome("any (show_version where version < 20.9.1)", &[]), "hit");
    assert_eq!(outcome("any (show_version where version < \"20.6.3\")", &[]), "no_hit");
    assert_eq!(outcome("any (show_version where version >= 20.6)", &[]), "hit");
    assert_eq!(
        outcome("any (lograge where status != 200 and duration > 30.5)", &[]),
        "hit"
    );
    assert_eq!(
        outcome("any (nginx_error where pid == 47 and conn <= 1576)", &[]),
        "hit"
    );
}

#[test]
fn text_tests() {
    assert_eq!(
        outcome(r#"any (nginx_error where request starts with "POST ")"#, &[]),
        "hit"
    );
    assert_eq!(
        outcome(r#"any (nginx_error where upstream ends with "/oauth/token")"#, &[]),
        "hit"
    );
    assert_eq!(
        outcome(
            r#"any (nginx_error where message contains ["no live upstreams", "temporarily disabled"])"#,
            &[]
        ),
        "hit"
    );
    assert_eq!(
        outcome(
            r#"any (lograge where controller in ["Doorkeeper::TokensController"])"#,
            &[]
        ),
        "hit"
    );
}

#[test]
fn regex_matches_with_captures_in_the_message() {
    let (got, message) = run(
        "upstream",
        &[(
            "upstream",
            r#"nginx_error where message matches /connect\(\) failed \((?P<code>\d+): (?P<why>[^)]+)\)/"#,
        )],
        "code {upstream.code}: {upstream.why}, {upstream.count} times, first from {upstream.client}",
        &all_files(),
    );
    assert_eq!(got, "hit");
    assert_eq!(
        message,
        "code 111: Connection refused, 2 times, first from 192.168.10.1"
    );
    assert_eq!(
        outcome(r#"any (nginx_error where message matches /CONNECTION REFUSED/i)"#, &[]),
        "hit"
    );
    assert_eq!(
        outcome(r#"any (nginx_error where message matches /CONNECTION REFUSED/)"#, &[]),
        "no_hit"
    );
}

#[test]
fn ip_addresses_and_networks() {
    assert_eq!(outcome("any (tcpdump where dst in 10.106.0.0/16)", &[]), "hit");
    assert_eq!(outcome("any (tcpdump where src in 10.0.0.0/8)", &[]), "no_hit");
    assert_eq!(outcome("any (nginx_error where client == 192.168.10.7)", &[]), "hit");
}

#[test]
fn presence_of_fields() {
    assert_eq!(
        outcome("any (nginx_error where upstream is present and level == \"warn\")", &[]),
        "hit"
    );
    assert_eq!(outcome("any (lograge where view is missing)", &[]), "hit");
}

#[test]
fn shared_macros_lists_and_queries() {
    // `doorkeeper_token` is a shared query, `licensing_classes` a shared list.
    assert_eq!(outcome("doorkeeper_token", &[]), "hit");
    assert_eq!(
        outcome("any (nginx_error where message contains @licensing_classes)", &[]),
        "no_hit"
    );
}

#[test]
fn message_placeholders_for_builtin_fields() {
    let (_, message) = run(
        "refused",
        &[REFUSED],
        "{refused.file}:{refused.line} at {refused.time}",
        &all_files(),
    );
    assert_eq!(message, "var/log/nginx/error.log:1 at 2023-04-18T08:50:31.000Z");
}

#[test]
fn message_placeholders_with_a_fallback() {
    let q = [REFUSED, ("crit", r#"nginx_error where level == "crit""#)];
    let (_, message) = run(
        "refused or crit",
        &q,
        "{crit.client|no critical line}, {refused.client|-}",
        &all_files(),
    );
    assert_eq!(message, "no critical line, 192.168.10.1");
}

#[test]
fn message_segments_leave_out_what_the_bundle_does_not_show() {
    let q = [REFUSED, TOKEN, SYN];
    let message = "refused {refused.count} time(s): {?{syn.count} SYN(s) in the capture}{?, {token.count} token request(s) in the Rails log}";
    // Both sources present and matching: both segments.
    let (_, all) = run("refused", &q, message, &all_files());
    assert_eq!(
        all,
        "refused 2 time(s): 2 SYN(s) in the capture, 1 token request(s) in the Rails log"
    );
    // No capture: its segment is left out and the next one opens the list.
    let no_capture: Vec<_> = all_files()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("tcpdump"))
        .collect();
    let (_, without) = run("refused", &q, message, &no_capture);
    assert_eq!(without, "refused 2 time(s): 1 token request(s) in the Rails log");
    // Nothing but the nginx log: no dangling colon.
    let (_, bare) = run("refused", &q, message, &all_files()[..1]);
    assert_eq!(bare, "refused 2 time(s)");
}

#[test]
fn a_segment_hides_a_zero_count_and_nests() {
    let q = [REFUSED, ("crit", r#"nginx_error where level == "crit""#)];
    let (_, message) = run(
        "refused",
        &q,
        "{refused.count} refused{? ({crit.count} critical)}{?; upstreams: {?{all refused.upstream}}}",
        &all_files(),
    );
    assert_eq!(message, "2 refused; upstreams: http://172.18.0.5:3000/oauth/token");
}

#[test]
fn all_lists_every_distinct_value_sorted() {
    let (_, message) = run(
        "refused",
        &[REFUSED],
        "clients {all refused.client}; first {refused.client}",
        &all_files(),
    );
    assert_eq!(message, "clients 192.168.10.1 and 192.168.10.7; first 192.168.10.1");
}
