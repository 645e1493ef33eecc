//! The layers of `src/`: `lib.rs` lists the top-level modules bottom to top
//! under `// N. …` headings; a module may import only from its own layer
//! or those below it, the imports between modules must not form a circle,
//! and only `main.rs` may use the command line module. Unit tests
//! (`#[cfg(test)]` modules) may reach any layer: they check a module
//! against the built-in knowledge base.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules of `lib.rs`, each with its layer number.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut layer = 0;
    let mut out = BTreeMap::new();
    for line in lib.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("// ") {
            if let Some((n, _)) = rest.split_once(". ") {
                if let Ok(n) = n.parse() {
                    layer = n;
                }
            }
        } else if let Some(name) = line.strip_prefix("pub mod").or_else(|| line.strip_prefix("mod")) {
            let name = name.trim().trim_end_matches(';').trim();
            assert!(layer > 0, "lib.rs declares `{name}` before any `// N. layer` heading");
            out.insert(name.to_string(), layer);
        }
    }
    out
}

/// The code of a file without comments, string literals and unit-test
/// modules: what its imports are read from.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if text[i..].starts_with("#[cfg(test)]") {
            // A test module (or item) runs to the end of its braces.
            let Some(open) = text[i..].find('{') else { break };
            let mut depth = 0;
            let mut j = i + open;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
        } else if text[i..].starts_with("//") {
            i += text[i..].find('\n').unwrap_or(text.len() - i);
        } else if text[i..].starts_with("/*") {
            i += text[i..].find("*/").map_or(text.len() - i, |e| e + 2);
        } else if bytes[i] == b'"' && !text[..i].ends_with('\'') {
            // A plain string literal; raw strings here hold no `crate::`.
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The top-level modules a piece of code names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `triage_crate::` or the like
        }
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each top-level module's imports of other top-level modules, with the
/// file that makes each.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let edges = graph.entry(top.clone()).or_default();
        for target in imports(&code) {
            if target != top {
                edges.entry(target).or_insert_with(|| rel.display().to_string());
            }
        }
    }
    graph
}

/// A circle in the graph, as the list of modules along it.
fn find_circle(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_from_a_layer_above_it_and_no_imports_go_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let graph = module_graph(&src);
    let mut wrong = Vec::new();
    for (module, edges) in &graph {
        if module == "lib" {
            continue;
        }
        if module == "main" {
            continue; // the binary: above every layer
        }
        let Some(&own) = layers.get(module) else {
            wrong.push(format!("src/{module}: not declared in lib.rs under a layer heading"));
            continue;
        };
        for (target, file) in edges {
            if target == "cli" {
                wrong.push(format!("src/{file} uses `crate::cli`: only main.rs may"));
            }
            match layers.get(target) {
                Some(&theirs) if theirs > own => wrong.push(format!(
                    "src/{file} (layer {own}, {module}) uses `crate::{target}` (layer {theirs}): \
                     move what it needs down a layer or the caller up"
                )),
                Some(_) => {}
                None => wrong.push(format!(
                    "src/{file} uses `crate::{target}`, which lib.rs does not declare"
                )),
            }
        }
    }
    let without_main: BTreeMap<_, _> = graph
        .iter()
        .filter(|(m, _)| *m != "main" && *m != "lib")
        .map(|(m, e)| (m.clone(), e.clone()))
        .collect();
    if let Some(circle) = find_circle(&without_main) {
        wrong.push(format!("modules import each other in a circle: {}", circle.join(" → ")));
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_finds_an_upward_import_a_circle_and_ignores_comments_strings_and_tests() {
    let lib = "// 1. low\npub mod value;\n// 2. high\npub mod engine;\npub mod report;\n";
    let layers = layers(lib);
    assert_eq!(layers["value"], 1);
    assert_eq!(layers["report"], 2);
    let code = code_of(
        "use crate::engine::Engine; // crate::report\n\
         /// [`crate::cli`]\nlet s = \"crate::serve\";\n\
         use crate::{value::Value, report};\n\
         #[cfg(test)]\nmod tests { use crate::scan; }\n",
    );
    let found = imports(&code);
    assert_eq!(
        found,
        ["engine", "report", "value"].iter().map(|s| s.to_string()).collect()
    );
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeMap::from([("b".to_string(), "a.rs".to_string())]));
    graph.insert("b".to_string(), BTreeMap::from([("c".to_string(), "b.rs".to_string())]));
    graph.insert("c".to_string(), BTreeMap::from([("a".to_string(), "c.rs".to_string())]));
    assert_eq!(find_circle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_circle(&graph), None);
}
