//! The documentation against the code: every variable `.env.example` lists is
//! in docs/configuration.md with the same default, and every one the code
//! reads is in `.env.example`; every admin API route is in docs/admin-api.md;
//! the README stays short and no relative link points nowhere. Plain tests:
//! they read files and start nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// Every `.rs` file under `folder` (relative to the crate), with its text.
fn rust_sources(folder: &str) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut folders = vec![root().join(folder)];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("cannot list {}: {e}", folder.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    found
}

/// `NAME=value` lines of `.env.example` (comments and blank lines skipped),
/// each value without its surrounding quotes.
fn env_example() -> BTreeMap<String, String> {
    let line = Regex::new(r"(?m)^([A-Z][A-Z0-9_]*)=(.*)$").unwrap();
    let text = read(".env.example");
    let vars: BTreeMap<String, String> = line
        .captures_iter(&text)
        .map(|c| {
            let value = c[2].trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .unwrap_or(value);
            (c[1].to_string(), unquoted.to_string())
        })
        .collect();
    assert!(vars.len() >= 50, "the scan of .env.example found only {vars:?}");
    vars
}

/// The rows of docs/configuration.md's tables: variable → its default cell.
/// A row documents a variable when its first cell is the name in backticks.
fn documented_variables() -> BTreeMap<String, String> {
    let row = Regex::new(r"(?m)^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|([^|]*)\|").unwrap();
    let text = read("docs/configuration.md");
    let vars: BTreeMap<String, String> =
        row.captures_iter(&text).map(|c| (c[1].to_string(), c[2].trim().to_string())).collect();
    assert!(vars.len() >= 50, "the scan of docs/configuration.md found only {vars:?}");
    vars
}

/// The variables the code reads. `src/config.rs` names each one as a string
/// literal (`vars.text("SMTP_URL")`, `vars.parsed("SEND_RATE", 0)`, …): every
/// all-caps literal outside its tests. The quote providers name their key and
/// base URL variables beside each provider (`FINNHUB_API_KEY`,
/// `YAHOO_BASE_URL`): every literal ending so anywhere in `src/`.
fn variables_the_code_reads() -> BTreeSet<String> {
    let config = read("src/config.rs");
    let config = config.split("#[cfg(test)]").next().unwrap();
    let literal = Regex::new(r#""([A-Z][A-Z0-9_]{2,})""#).unwrap();
    let mut vars: BTreeSet<String> = literal.captures_iter(config).map(|c| c[1].to_string()).collect();
    let provider_variable = Regex::new(r#""([A-Z][A-Z0-9]*_(?:API_KEY|BASE_URL))""#).unwrap();
    for (_, source) in rust_sources("src") {
        vars.extend(provider_variable.captures_iter(&source).map(|c| c[1].to_string()));
    }
    for known in ["DATABASE_URL", "BIND", "SMTP_URL", "SECRET_KEY", "FINNHUB_API_KEY", "YAHOO_BASE_URL"] {
        assert!(vars.contains(known), "the scan of the code missed {known}: {vars:?}");
    }
    vars
}

#[test]
fn every_variable_in_env_example_is_documented() {
    let documented = documented_variables();
    let missing: Vec<_> = env_example().into_keys().filter(|var| !documented.contains_key(var)).collect();
    assert!(missing.is_empty(), "in .env.example but not in a table of docs/configuration.md: {missing:?}");
}

#[test]
fn every_documented_variable_is_in_env_example() {
    let example = env_example();
    let extra: Vec<_> = documented_variables().into_keys().filter(|var| !example.contains_key(var)).collect();
    assert!(extra.is_empty(), "in docs/configuration.md but not in .env.example: {extra:?}");
}

#[test]
fn every_variable_the_code_reads_is_in_env_example() {
    let example = env_example();
    let missing: Vec<_> = variables_the_code_reads().into_iter().filter(|var| !example.contains_key(var)).collect();
    assert!(missing.is_empty(), "read by the code but not in .env.example: {missing:?}");
}

#[test]
fn every_default_in_the_configuration_doc_is_the_one_in_env_example() {
    let documented = documented_variables();
    let wrong: Vec<String> = env_example()
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .filter_map(|(var, value)| {
            let cell = documented.get(&var)?;
            (!cell.contains(&format!("`{value}`")))
                .then(|| format!("{var}: .env.example has `{value}`, the doc {cell}"))
        })
        .collect();
    assert!(wrong.is_empty(), "defaults that differ:\n{}", wrong.join("\n"));
}

/// Every `/admin/api` route declared in `src/web` (any file, any depth), as
/// (METHOD, path), a path with `{action:pause|resume}` counted once per choice.
/// Under `src/web/admin` routes are declared within the `/admin` scope.
fn declared_admin_api_routes() -> BTreeSet<(String, String)> {
    let attribute = Regex::new(r#"#\[(get|post|delete|put|patch)\("([^"]*)"\)\]"#).unwrap();
    let choices = Regex::new(r"\{\w+:([\w|]+)\}").unwrap();
    let mut routes = BTreeSet::new();
    for (file, source) in rust_sources("src/web") {
        let scope = if file.starts_with(root().join("src/web/admin")) { "/admin" } else { "" };
        for found in attribute.captures_iter(&source) {
            let (method, path) = (found[1].to_uppercase(), &format!("{scope}{}", &found[2]));
            if !path.starts_with("/admin/api") {
                continue;
            }
            match choices.captures(path) {
                Some(alternatives) => {
                    for choice in alternatives[1].split('|') {
                        let whole = alternatives.get(0).unwrap().as_str();
                        routes.insert((method.clone(), path.replace(whole, choice)));
                    }
                }
                None => {
                    routes.insert((method, path.to_string()));
                }
            }
        }
    }
    assert!(routes.len() >= 20, "the route scan found only {routes:?}");
    routes
}

#[test]
fn the_admin_api_table_lists_exactly_the_declared_routes() {
    let row = Regex::new(r"(?m)^\|\s*(GET|POST|DELETE|PUT|PATCH)\s*\|\s*`(/admin/api[^`]*)`\s*\|").unwrap();
    let text = read("docs/admin-api.md");
    let documented: BTreeSet<(String, String)> =
        row.captures_iter(&text).map(|c| (c[1].to_string(), c[2].to_string())).collect();
    let declared = declared_admin_api_routes();
    let missing: Vec<_> = declared.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&declared).collect();
    assert!(missing.is_empty(), "declared in src/web but not in docs/admin-api.md: {missing:?}");
    assert!(extra.is_empty(), "in docs/admin-api.md but declared nowhere in src/web: {extra:?}");
}

#[test]
fn the_readme_stays_within_200_lines() {
    let lines = read("README.md").lines().count();
    assert!(lines <= 200, "README.md has {lines} lines; reference material belongs in docs/");
}

#[test]
fn every_relative_link_in_the_docs_points_at_a_file() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut pages = vec![PathBuf::from("README.md"), PathBuf::from("CONTRIBUTING.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "md") {
            pages.push(path.strip_prefix(root()).unwrap().to_path_buf());
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = read(page.to_str().unwrap());
        for found in link.captures_iter(&text) {
            let target = &found[1];
            if target.starts_with('#') || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap();
            let folder = root().join(page).parent().unwrap().to_path_buf();
            if !folder.join(file).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to files that do not exist:\n{}", broken.join("\n"));
}
