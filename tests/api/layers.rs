//! The shape of `src`: layers import downwards only, and no two modules
//! import each other, however indirectly. Read from the source text, outside
//! test modules (a test may reach anywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first. `config`, `tokens` and `telemetry` are read by all and sit
/// with `domain`; `startup` wires everything.
const LAYERS: [&[&str]; 7] = [
    &["domain", "config", "tokens", "telemetry"],
    &["store"],
    &["sources"],
    &["mailer"],
    &["jobs"],
    &["web"],
    &["startup"],
];

fn layer(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or_default();
    LAYERS.iter().position(|names| names.contains(&top)).unwrap_or_else(|| panic!("{top} is in no layer"))
}

/// Every module of `src` (`store::deliveries`) with its source outside `#[cfg(test)]`.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let mut module = prefix.to_vec();
            if path.is_dir() {
                module.push(name);
                walk(&path, &module, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || (prefix.is_empty() && (name == "lib" || name == "main")) {
                continue;
            }
            if name != "mod" {
                module.push(name);
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
            out.insert(module.join("::"), code);
        }
    }
    let mut out = BTreeMap::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &[], &mut out);
    out
}

/// The modules `code` (of `module`) names through `crate::` and `super::`
/// paths: the longest prefix of each path that is a module, other than
/// `module` itself, its parents and its children.
fn imports(module: &str, is_mod_rs: bool, code: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let own: Vec<&str> = module.split("::").collect();
    let mut found = BTreeSet::new();
    let words: Vec<&str> = code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).collect();
    for word in words {
        let mut segments: Vec<&str> = word.split("::").filter(|s| !s.is_empty()).collect();
        let mut path: Vec<&str> = match segments.first() {
            Some(&"crate") => Vec::new(),
            Some(&"super") => own[..own.len() - usize::from(!is_mod_rs)].to_vec(),
            _ => continue,
        };
        segments.remove(0);
        while segments.first() == Some(&"super") {
            path.pop();
            segments.remove(0);
        }
        path.extend(segments);
        let target = (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|m| all.contains_key(m));
        if let Some(target) = target {
            let related = target == module
                || module.starts_with(&format!("{target}::"))
                || target.starts_with(&format!("{module}::"));
            if !related {
                found.insert(target);
            }
        }
    }
    found
}

fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let all = modules();
    let mod_rs: BTreeSet<String> =
        all.keys().filter(|m| all.keys().any(|c| c.starts_with(&format!("{m}::")))).cloned().collect();
    all.iter().map(|(m, code)| (m.clone(), imports(m, mod_rs.contains(m), code, &all))).collect()
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let upward: Vec<String> = import_graph()
        .iter()
        .flat_map(|(from, to)| to.iter().filter(|t| layer(t) > layer(from)).map(move |t| format!("{from} -> {t}")))
        .collect();
    assert!(upward.is_empty(), "upward imports: {upward:#?}");
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let graph = import_graph();
    // Depth-first, remembering the path: an edge back into it closes a circle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        circles: &mut Vec<String>,
    ) {
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(start) = path.iter().position(|p| p == next) {
                circles.push(format!("{} -> {next}", path[start..].join(" -> ")));
            } else if !done.contains(next) {
                visit(next, graph, path, done, circles);
            }
        }
        path.pop();
        done.insert(node.to_string());
    }
    let (mut done, mut circles) = (BTreeSet::new(), Vec::new());
    for node in graph.keys() {
        if !done.contains(node) {
            visit(node, &graph, &mut Vec::new(), &mut done, &mut circles);
        }
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}
