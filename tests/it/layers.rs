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

/// Reads one file's paths; see [`imports_of`].
struct Reader {
    module: Vec<String>,
    found: BTreeSet<Vec<String>>,
}

/// Whether the attributes make an item test-only.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>().is_ok_and(|m| match m {
                syn::Meta::Path(p) => p.is_ident("test"),
                // `all(test, …)` is test-only too; `not(test)` is not.
                syn::Meta::List(l) => {
                    l.path.is_ident("all") && l.tokens.to_string().split(',').any(|t| t.trim() == "test")
                }
                syn::Meta::NameValue(_) => false,
            })
    })
}

impl Reader {
    /// `segments` as a path from the crate root, if it is one.
    fn resolve(&mut self, segments: Vec<String>) {
        let mut base = match segments.first().map(String::as_str) {
            Some("crate") => Vec::new(),
            Some("self") | Some("super") => self.module.clone(),
            _ => return,
        };
        let mut rest = segments.as_slice();
        if rest[0] == "crate" || rest[0] == "self" {
            rest = &rest[1..];
        }
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        if !base.is_empty() {
            self.found.insert(base);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut path = prefix.clone();
                if n.ident != "self" {
                    path.push(n.ident.to_string());
                }
                self.resolve(path);
            }
            syn::UseTree::Rename(r) => {
                let mut path = prefix.clone();
                if r.ident != "self" {
                    path.push(r.ident.to_string());
                }
                self.resolve(path);
            }
            syn::UseTree::Glob(_) => self.resolve(prefix.clone()),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }
}

impl<'ast> syn::visit::Visit<'ast> for Reader {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            _ => &[],
        };
        if is_test(attrs) {
            return;
        }
        match item {
            syn::Item::Use(u) => self.use_tree(&mut Vec::new(), &u.tree),
            syn::Item::Mod(m) => {
                // An inline module: `super::` inside it is this file's module.
                self.module.push(m.ident.to_string());
                syn::visit::visit_item_mod(self, m);
                self.module.pop();
            }
            _ => syn::visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            _ => return syn::visit::visit_impl_item(self, item),
        };
        if !is_test(attrs) {
            syn::visit::visit_impl_item(self, item);
        }
    }

    fn visit_stmt(&mut self, stmt: &'ast syn::Stmt) {
        if let syn::Stmt::Item(item) = stmt {
            return self.visit_item(item);
        }
        syn::visit::visit_stmt(self, stmt);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.resolve(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
}

/// The absolute module paths (from the crate root) that a file's code
/// names: every `use` tree flattened (groups, nested groups, renames), and
/// every path in the code, with `crate::`, `self::` and `super::` resolved
/// against the file's module (`module`, e.g. `["scan", "eval"]`). Items
/// under `#[cfg(test)]` are skipped, wherever they are.
fn imports_of(text: &str, module: &[String]) -> BTreeSet<Vec<String>> {
    use syn::visit::Visit;
    let file = syn::parse_file(text).unwrap_or_else(|e| panic!("{}: does not parse: {e}", module.join("::")));
    let mut reader = Reader {
        module: module.to_vec(),
        found: BTreeSet::new(),
    };
    for item in &file.items {
        reader.visit_item(item);
    }
    reader.found
}

/// The top-level modules named by [`imports_of`].
fn imports(text: &str, module: &[String]) -> BTreeSet<String> {
    imports_of(text, module).into_iter().map(|p| p[0].clone()).collect()
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
        let mut module: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if module.last().is_some_and(|m| m == "mod" || m == "lib" || m == "main") {
            module.pop();
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(top.clone()).or_default();
        for target in imports(&text, &module) {
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
fn the_checker_finds_an_upward_import_a_circle_and_ignores_comments_strings_and_tests_only() {
    let lib = "// 1. low\npub mod value;\n// 2. high\npub mod engine;\npub mod report;\n";
    let layers = layers(lib);
    assert_eq!(layers["value"], 1);
    assert_eq!(layers["report"], 2);
    let module = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    // Comments, strings and test items name nothing; groups are read.
    let code = "use crate::engine::Engine; // crate::report\n\
         /// [`crate::cli`]\nfn f() { let _s = \"crate::serve\"; }\n\
         use crate::{value::Value, report};\n\
         #[cfg(test)]\nmod tests { use crate::scan; }\n";
    assert_eq!(imports(code, &module(&["time"])), set(&["engine", "report", "value"]));
    // What a reviewer slipped past the first, text-based reader:
    // (a) nested groups,
    assert_eq!(
        imports("use crate::{time::{ZoneTable}, engine::Engine};", &module(&["value"])),
        set(&["engine", "time"])
    );
    // (b) `super::super` from a file two levels down, (c) `super::` in a
    // top-level file (the crate root),
    assert_eq!(
        imports("use super::super::authoring::kb::load_kb;", &module(&["scan", "eval"])),
        set(&["authoring"])
    );
    assert_eq!(imports("use super::cli::run;", &module(&["value"])), set(&["cli"]));
    // (d) `#[cfg(test)]` on an item that is not a module hides only it,
    assert_eq!(
        imports(
            "#[cfg(test)] const T: u8 = 0;\nuse crate::report::Report;\nfn f() {}",
            &module(&["value"])
        ),
        set(&["report"])
    );
    // (e) braces in a test module's strings, (f) raw strings,
    assert_eq!(
        imports(
            "#[cfg(test)]\nmod tests { fn t() { assert_eq!(\"{\", \"{\"); } }\nuse crate::engine::Engine;",
            &module(&["value"])
        ),
        set(&["engine"])
    );
    assert_eq!(
        imports(
            "fn f() { let _s = r#\"a \" b\"#; }\nuse crate::engine::Engine;",
            &module(&["value"])
        ),
        set(&["engine"])
    );
    // and paths in code, not only in `use`; `self::` inside a module.
    assert_eq!(
        imports("fn f() { crate::serve::run(); }", &module(&["value"])),
        set(&["serve"])
    );
    assert_eq!(imports("use self::inner::X;", &module(&["scan"])), set(&["scan"]));
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeMap::from([("b".to_string(), "a.rs".to_string())]));
    graph.insert("b".to_string(), BTreeMap::from([("c".to_string(), "b.rs".to_string())]));
    graph.insert("c".to_string(), BTreeMap::from([("a".to_string(), "c.rs".to_string())]));
    assert_eq!(find_circle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_circle(&graph), None);
}
