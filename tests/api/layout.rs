//! The source layout keeps its direction: no two files import each other, directly or
//! through others (`crate::` and `super::` paths, unit tests aside). A cycle means a helper
//! lives in the wrong file; the failure names the files that form it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[test]
fn no_source_files_import_each_other_in_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in &modules {
        let text = without_tests(&std::fs::read_to_string(path).unwrap());
        let targets = edges.entry(module.clone()).or_default();
        for target in imports(module, &text) {
            if let Some(found) = longest_known(&target, &modules)
                && found != *module
            {
                targets.insert(found);
            }
        }
    }
    let cycles = cycles(&edges);
    assert!(
        cycles.is_empty(),
        "import cycles (move the shared item to a module both can import):\n{}",
        cycles
            .iter()
            .map(|cycle| cycle.join(" <-> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_cycle_is_found_and_named() {
    let edges = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(cycles(&edges), [vec!["a", "b", "c"]]);
    let modules = BTreeMap::from([("store::spool".to_owned(), PathBuf::new())]);
    let found = imports(
        "store::sqlite",
        "use super::{spool::Spool, Other};\nuse crate::store::spool;",
    );
    assert!(found.contains(&vec![
        "store".to_owned(),
        "spool".to_owned(),
        "Spool".to_owned()
    ]));
    assert_eq!(
        longest_known(&["store", "spool", "Spool"].map(str::to_owned), &modules),
        Some("store::spool".to_owned())
    );
}

/// Every source file by module path (`store::spool`); `lib.rs` and `main.rs` are the root.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod") {
                    parts.pop();
                }
                if parts != ["lib"] && parts != ["main"] && !parts.is_empty() {
                    found.insert(parts.join("::"), path);
                }
            }
        }
    }
    found
}

fn without_tests(text: &str) -> String {
    let code = text.split("\n#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths `module`'s text names through `crate::` or `super::`, from the crate root,
/// brace groups expanded one level.
fn imports(module: &str, text: &str) -> Vec<Vec<String>> {
    let parent: Vec<String> = module.split("::").map(str::to_owned).collect();
    let parent = &parent[..parent.len() - 1];
    let mut found = Vec::new();
    for (prefix, root) in [("crate::", &[][..]), ("super::", parent)] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &text[at + prefix.len()..];
            for path in paths(rest) {
                let mut full = root.to_vec();
                full.extend(path);
                found.push(full);
            }
        }
    }
    found
}

/// The path at the start of `rest`, or each path of a brace group there.
fn paths(rest: &str) -> Vec<Vec<String>> {
    if let Some(group) = rest.strip_prefix('{') {
        let end = group.find('}').unwrap_or(group.len());
        return group[..end]
            .split(',')
            .map(|item| path(item.trim()))
            .filter(|p| !p.is_empty())
            .collect();
    }
    vec![path(rest)]
}

fn path(text: &str) -> Vec<String> {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    text[..end]
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn longest_known(path: &[String], modules: &BTreeMap<String, PathBuf>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|k| path[..k].join("::"))
        .find(|candidate| modules.contains_key(candidate))
}

/// The strongly connected components of more than one module (Tarjan), each sorted.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'e> {
        edges: &'e BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'e str, usize>,
        low: BTreeMap<&'e str, usize>,
        stack: Vec<&'e str>,
        found: Vec<Vec<String>>,
    }
    impl<'e> Walk<'e> {
        fn visit(&mut self, v: &'e str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn the_readmes_cargo_run_starts_the_receiver_in_the_workspace() {
    // The workspace builds two binaries (the receiver and sinch-webhooks-bench); without a
    // default, `cargo run --release`, the README's first command, refuses to choose.
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("default-run = \"sinch-webhooks\""),
        "Cargo.toml must name the receiver as default-run"
    );
}
