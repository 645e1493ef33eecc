//! Shorter names for files inside archives, for the human report.
//!
//! A support bundle is often an admin-tech tarball whose members sit under
//! a folder named like the tarball, so every evidence path starts with the
//! same 100-odd characters twice. The human report names each archive once,
//! in a legend under the verdict (`…/ is 10.66…-admin-tech.tar.gz/10.66…/`),
//! and writes its members as `…/var/log/nms/vmanage-server.log`. The JSON
//! report keeps the full paths.

/// Names ending so are archives when a path goes on inside them.
const ARCHIVE_ENDINGS: [&str; 9] = [
    ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip", ".gz",
];

/// Archive prefixes shorter than this are written out in full: a legend
/// line would cost more than it saves.
const MIN_PREFIX: usize = 24;

/// The archive prefixes of the paths a report shows, and their tags.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShortPaths {
    /// (prefix ending in `/`, tag ending in `/`), in order of first use.
    prefixes: Vec<(String, String)>,
}

/// The archive part of `path`: up to its deepest archive, with the folder
/// inside that is named like the archive (the admin-tech habit).
fn archive_prefix(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let last_archive = (0..parts.len().saturating_sub(1)).rev().find(|&i| {
        let lower = parts[i].to_ascii_lowercase();
        ARCHIVE_ENDINGS
            .iter()
            .any(|e| lower.ends_with(e) && lower.len() > e.len())
    })?;
    let mut end = last_archive + 1;
    let lower = parts[last_archive].to_ascii_lowercase();
    let stem_len = ARCHIVE_ENDINGS
        .iter()
        .find(|e| lower.ends_with(*e))
        .map_or(lower.len(), |e| lower.len() - e.len());
    let stem = &parts[last_archive][..stem_len];
    if end + 1 < parts.len() && parts[end] == stem {
        end += 1;
    }
    let prefix = format!("{}/", parts[..end].join("/"));
    (prefix.len() >= MIN_PREFIX).then_some(prefix)
}

impl ShortPaths {
    /// The prefixes of `paths` (the paths the report will show).
    pub(crate) fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> ShortPaths {
        let mut prefixes: Vec<String> = Vec::new();
        for p in paths {
            if let Some(prefix) = archive_prefix(p) {
                if !prefixes.contains(&prefix) {
                    prefixes.push(prefix);
                }
            }
        }
        let tags: Vec<String> = match prefixes.len() {
            1 => vec!["…/".to_string()],
            n => (1..=n).map(|i| format!("…{i}/")).collect(),
        };
        ShortPaths {
            prefixes: prefixes.into_iter().zip(tags).collect(),
        }
    }

    /// `path` with its archive prefix replaced by its tag.
    pub(crate) fn short(&self, path: &str) -> String {
        // Longest first: a nested archive's prefix starts with its parent's.
        let mut best: Option<&(String, String)> = None;
        for entry in &self.prefixes {
            if path.starts_with(&entry.0) && best.is_none_or(|b| entry.0.len() > b.0.len()) {
                best = Some(entry);
            }
        }
        match best {
            Some((prefix, tag)) => format!("{tag}{}", &path[prefix.len()..]),
            None => path.to_string(),
        }
    }

    /// Free text (a rule's message) with every archive prefix in it
    /// replaced by its tag.
    pub(crate) fn in_text(&self, text: &str) -> String {
        let mut by_length: Vec<&(String, String)> = self.prefixes.iter().collect();
        by_length.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let mut out = text.to_string();
        for (prefix, tag) in by_length {
            out = out.replace(prefix.as_str(), tag);
        }
        out
    }

    /// Whether no path is shortened.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// (tag, prefix) pairs, for the legend.
    pub(crate) fn legend(&self) -> impl Iterator<Item = (&str, &str)> {
        self.prefixes.iter().map(|(p, t)| (t.as_str(), p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_tech_folder_goes_with_its_archive() {
        let p = "10.66.76.81-um8_vManage-20230113-173500-admin-tech.tar.gz/10.66.76.81-um8_vManage-20230113-173500-admin-tech/var/log/nms/vmanage-server.log";
        let s = ShortPaths::new([p, "ssm-onprem/var/log/messages"]);
        assert_eq!(s.short(p), "…/var/log/nms/vmanage-server.log");
        assert_eq!(s.short("ssm-onprem/var/log/messages"), "ssm-onprem/var/log/messages");
        assert_eq!(
            s.in_text(&format!("first in {p}")),
            "first in …/var/log/nms/vmanage-server.log"
        );
    }

    #[test]
    fn short_archives_and_compressed_logs_stay_as_they_are() {
        let s = ShortPaths::new(["b.tgz/var/log/x.log", "var/log/nms/vmanage-server.log.2.gz"]);
        assert!(s.is_empty());
    }

    #[test]
    fn several_archives_are_numbered_and_nested_ones_win() {
        let a = "uploads/customer-bundle-2024.tar.gz/var/log/a.log";
        let b = "uploads/customer-bundle-2024.tar.gz/inner/manager-admin-tech-x.tgz/var/log/b.log";
        let s = ShortPaths::new([a, b]);
        assert_eq!(s.short(a), "…1/var/log/a.log");
        assert_eq!(s.short(b), "…2/var/log/b.log");
    }
}
