//! The rule set the service runs, and its reload: the rules directories
//! (and tuning files) are watched; a change loads a new set beside the old
//! one, and only a set that loads without an error replaces it. A failed
//! reload keeps the old set and is reported (`GET /v1/rules`, the reload
//! endpoint, the log). Jobs hold the set they started with, so a reload
//! never changes a running diagnosis.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::Serialize;

use crate::engine::Engine;
use crate::rules::lint::LintSettings;
use crate::rules::tune::DisabledRule;

/// One loaded, checked rule set.
pub(crate) struct RuleSet {
    /// The compiled knowledge base.
    pub engine: Engine,
    /// Rules the tuning files disabled.
    pub disabled: Vec<DisabledRule>,
    /// A digest of every rule, format and tuning file it was loaded from.
    pub version: String,
    /// When it was loaded, RFC 3339.
    pub loaded_at: String,
    docs: OnceLock<HashMap<String, Vec<u8>>>,
    /// The rule directories as the server names them, which its public
    /// documentation pages must not show.
    dirs: Vec<String>,
}

impl RuleSet {
    /// The HTML documentation of this rule set, generated on first use
    /// (it runs every rule's first hit test for the worked examples), by
    /// path under the site's root. Served from memory, so no request path
    /// ever reaches the file system. The pages are public: a rule file is
    /// named relative to its rules directory, never by the server's path.
    pub(crate) fn docs(&self) -> &HashMap<String, Vec<u8>> {
        self.docs.get_or_init(|| {
            let kb = &self.engine.kb;
            let examples = crate::authoring::docs::examples(kb);
            let markdown = crate::authoring::docs::markdown(kb, &examples);
            crate::authoring::docs::html::site(kb, &markdown)
                .into_iter()
                .map(|page| {
                    let text = self.dirs.iter().fold(page.text, |text, dir| text.replace(dir, ""));
                    (page.path, text.into_bytes())
                })
                .collect()
        })
    }
}

/// Why a rule set could not be loaded.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadError {
    /// What went wrong, in a sentence.
    pub error: String,
    /// Each problem of the rule files, `path:line:col: CODE message`.
    pub problems: Vec<String>,
    /// When, RFC 3339.
    pub at: String,
}

/// Where the rules come from: the options of `serve` that name them.
#[derive(Debug, Clone)]
pub(crate) struct RuleSource {
    /// How much of the built-in knowledge base to load too.
    pub builtin: crate::rules::Builtin,
    /// Rule directories, in layer order.
    pub dirs: Vec<PathBuf>,
    /// Tuning files, applied in order.
    pub tune: Vec<PathBuf>,
    /// Lint levels.
    pub lints: LintSettings,
    /// The source tree's `rules/` directory, against which the built-in
    /// rules' test bundles resolve (the rule pages show their examples).
    pub repo_rules_dir: Option<PathBuf>,
}

impl RuleSource {
    /// Loads and checks a rule set; any error in any file fails the load
    /// (a half-edited file must not silently drop its rule).
    pub(crate) fn load(&self) -> Result<RuleSet, LoadError> {
        let failed = |error: String, problems: Vec<String>| LoadError {
            error,
            problems,
            at: super::store::now(),
        };
        let mut kb = crate::authoring::kb::load_kb(
            self.builtin,
            &self.dirs,
            &self.lints,
            crate::matching::regex_util::UnicodeForm::OnDemand,
            self.repo_rules_dir.as_deref(),
        )
        .map_err(|e| failed(format!("cannot load rules: {e}"), Vec::new()))?;
        let mut disabled = Vec::new();
        for path in &self.tune {
            let (off, problems) =
                crate::rules::tune::apply_file(&mut kb, path).map_err(|e| failed(e.to_string(), Vec::new()))?;
            if problems.has_errors() {
                kb.problems.push(problems);
            }
            disabled.extend(off);
        }
        if kb.has_errors() {
            let problems = kb.problem_lines();
            let files = kb.problems.iter().filter(|f| f.has_errors()).count();
            return Err(failed(
                format!("{files} rule file(s) have errors; fix them (`triage check`) and the rules reload"),
                problems,
            ));
        }
        Ok(RuleSet {
            engine: Engine::new(kb),
            disabled,
            version: self.version(),
            loaded_at: super::store::now(),
            docs: OnceLock::new(),
            dirs: self
                .dirs
                .iter()
                .chain(&self.repo_rules_dir)
                .flat_map(|d| [d.to_path_buf(), d.canonicalize().unwrap_or_default()])
                .map(|d| d.display().to_string())
                .filter(|d| d.len() > 1)
                .map(|d| format!("{}/", d.trim_end_matches('/')))
                .collect(),
        })
    }

    fn files(&self) -> Vec<PathBuf> {
        self.named_files().into_iter().map(|(path, _)| path).collect()
    }

    /// Each rule file with the name it has in the rule set: its path
    /// inside its rules directory (a tuning file: its file name). The
    /// version hashes these names, not where the directory is mounted, so
    /// the same rules give the same version on every machine.
    fn named_files(&self) -> Vec<(PathBuf, String)> {
        let mut files: Vec<(PathBuf, String)> = self
            .dirs
            .iter()
            .flat_map(|d| {
                walkdir::WalkDir::new(d)
                    .sort_by_file_name()
                    .into_iter()
                    .filter_map(Result::ok)
                    // Rules, formats, macros and triage.toml: an editor's
                    // swap file or a README is not part of the rule set.
                    .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "toml"))
                    .map(move |e| {
                        let name = e.path().strip_prefix(d).unwrap_or(e.path()).display().to_string();
                        (e.into_path(), name)
                    })
            })
            .collect();
        files.extend(self.tune.iter().map(|t| {
            let name = t
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (t.clone(), name)
        }));
        files
    }

    /// What changes when any file changes: names, sizes and modification
    /// times. Cheap enough to poll every second or two.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut hash = Fnv::default();
        for path in self.files() {
            hash.write(path.as_os_str().as_encoded_bytes());
            if let Ok(meta) = std::fs::metadata(&path) {
                hash.write(&meta.len().to_le_bytes());
                if let Ok(modified) = meta.modified() {
                    let since = modified.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                    hash.write(&since.as_nanos().to_le_bytes());
                }
            }
        }
        hash.0
    }

    /// A digest of the contents of every file (and of this build, which
    /// carries the built-in rules).
    fn version(&self) -> String {
        let mut hash = Fnv::default();
        hash.write(env!("CARGO_PKG_VERSION").as_bytes());
        hash.write(format!("{:?}", self.builtin).as_bytes());
        for (path, name) in self.named_files() {
            hash.write(&(name.len() as u64).to_le_bytes());
            hash.write(name.as_bytes());
            hash.write(&std::fs::read(&path).unwrap_or_default());
        }
        format!("{:016x}", hash.0)
    }
}

/// FNV-1a, 64 bits: stable across builds, unlike std's hasher.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        self.0 = self.0.rotate_left(5) ^ 0xff;
    }
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Reloaded {
    /// The version now in use.
    pub version: String,
    /// Whether it differs from the one before.
    pub changed: bool,
    /// Rules in the set.
    pub rules: usize,
}

/// The rule set in use, and the last failed reload.
pub(crate) struct Rules {
    source: RuleSource,
    current: RwLock<Arc<RuleSet>>,
    last_error: Mutex<Option<LoadError>>,
    fingerprint: Mutex<u64>,
    reloading: Mutex<()>,
}

impl Rules {
    /// Loads the first set; an error here stops the service from starting.
    pub(crate) fn new(source: RuleSource) -> Result<Rules, LoadError> {
        let fingerprint = source.fingerprint();
        let set = source.load()?;
        Ok(Rules {
            source,
            current: RwLock::new(Arc::new(set)),
            last_error: Mutex::new(None),
            fingerprint: Mutex::new(fingerprint),
            reloading: Mutex::new(()),
        })
    }

    /// The set new jobs use.
    pub(crate) fn current(&self) -> Arc<RuleSet> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last reload that failed, if the one after it has not succeeded.
    pub(crate) fn last_error(&self) -> Option<LoadError> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the files changed since the last load.
    pub(crate) fn changed_on_disk(&self) -> bool {
        self.source.fingerprint() != *self.fingerprint.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the rules again; on success the new set replaces the old one
    /// (for new jobs), on failure the old one stays and the error is kept.
    pub(crate) fn reload(&self) -> Result<Reloaded, LoadError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        // Taken before loading: a change made while loading is seen by the next poll.
        let fingerprint = self.source.fingerprint();
        *self.fingerprint.lock().unwrap_or_else(|e| e.into_inner()) = fingerprint;
        // Same files as the set in use (a touch, a reload request with
        // nothing new): keep it, and its generated documentation.
        let current = self.current();
        if self.last_error().is_none() && self.source.version() == current.version {
            return Ok(Reloaded {
                version: current.version.clone(),
                changed: false,
                rules: current.engine.kb.rules.len(),
            });
        }
        match self.source.load() {
            Ok(set) => {
                let set = Arc::new(set);
                let old = std::mem::replace(
                    &mut *self.current.write().unwrap_or_else(|e| e.into_inner()),
                    set.clone(),
                );
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Ok(Reloaded {
                    version: set.version.clone(),
                    changed: old.version != set.version,
                    rules: set.engine.kb.rules.len(),
                })
            }
            Err(e) => {
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The rule directories being watched.
    pub(crate) fn dirs(&self) -> &[PathBuf] {
        &self.source.dirs
    }
}

/// Whether `path` names a file inside the docs site (`rules/X.html`),
/// as the in-memory docs map is keyed.
pub(crate) fn docs_key(path: &str) -> String {
    let path = path.trim_start_matches('/');
    if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn source(dir: &Path) -> RuleSource {
        RuleSource {
            builtin: crate::rules::Builtin::All,
            dirs: vec![dir.to_path_buf()],
            tune: Vec::new(),
            lints: LintSettings::default(),
            repo_rules_dir: None,
        }
    }

    const RULE: &str = "id = \"LOCAL-001\"\ntitle = \"t\"\nseverity = \"warning\"\ncondition = \"any q\"\nmessage = \"m\"\nremediation = \"r\"\n[queries]\nq = 'syslog where msg contains \"zzz\"'\n";

    #[test]
    fn the_same_rules_have_the_same_version_wherever_they_are_mounted() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for dir in [&a, &b] {
            std::fs::create_dir(dir.path().join("site")).unwrap();
            std::fs::write(dir.path().join("site").join("local.toml"), RULE).unwrap();
        }
        let version = |dir: &Path| Rules::new(source(dir)).unwrap().current().version.clone();
        assert_eq!(version(a.path()), version(b.path()));
        // A change of content or of name is a new version.
        std::fs::write(b.path().join("site").join("local.toml"), RULE.replace("zzz", "yyy")).unwrap();
        assert_ne!(version(a.path()), version(b.path()));
        std::fs::write(b.path().join("site").join("local.toml"), RULE).unwrap();
        std::fs::rename(b.path().join("site"), b.path().join("other")).unwrap();
        assert_ne!(version(a.path()), version(b.path()));
    }

    #[test]
    fn a_broken_edit_keeps_the_old_rules_and_a_fix_loads_the_new() {
        let dir = tempfile::tempdir().unwrap();
        let rules = Rules::new(source(dir.path())).unwrap();
        let before = rules.current();
        assert!(before.engine.kb.rule("LOCAL-001").is_none());

        std::fs::write(
            dir.path().join("local.toml"),
            "id = \"LOCAL-001\"\ncondition = \"any (\"\n",
        )
        .unwrap();
        assert!(rules.changed_on_disk());
        let error = rules.reload().unwrap_err();
        assert!(error.error.contains("have errors"), "{error:?}");
        assert!(!error.problems.is_empty());
        assert_eq!(rules.current().version, before.version, "the old set stays");
        assert!(rules.last_error().is_some());
        assert!(!rules.changed_on_disk());

        std::fs::write(dir.path().join("local.toml"), RULE).unwrap();
        let reloaded = rules.reload().unwrap();
        assert!(reloaded.changed);
        assert!(rules.current().engine.kb.rule("LOCAL-001").is_some());
        assert!(rules.last_error().is_none());
        // The set a job took before the reload is still whole.
        assert!(before.engine.kb.rule("LOCAL-001").is_none());
        // Its public page names the rule file, not where the server keeps it.
        let set = rules.current();
        let page = String::from_utf8(set.docs()["rules/LOCAL-001.html"].clone()).unwrap();
        assert!(page.contains("local.toml"), "{page}");
        assert!(!page.contains(&dir.path().display().to_string()), "{page}");
    }

    #[test]
    fn docs_paths_map_to_pages() {
        assert_eq!(docs_key(""), "index.html");
        assert_eq!(docs_key("/rules/X.html"), "rules/X.html");
        assert_eq!(docs_key("rules/"), "rules/index.html");
    }
}
