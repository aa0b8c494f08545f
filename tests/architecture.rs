//! The module graph: layers only point down, and no files import each
//! other in a circle. Read from the `use` lines and paths of `src/`, so a
//! change that breaks the layering fails here, naming the import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's top-level modules, bottom layer first. A module may use
/// modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["alloc", "cleanup", "contract", "pool"],
    &["mask"],
    &["input"],
    &["checks", "rules"],
    &["findings"],
    &["engine", "backend"],
    &["output"],
    &["app"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every library source file with its module path (`engine::plan`),
/// without its `#[cfg(test)]` part: tests may reach anywhere.
fn sources() -> Vec<(Vec<String>, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().to_string()).collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            // The binary (main, cli) and the crate root sit above every layer.
            if parts.is_empty() || parts == ["lib"] || parts == ["main"] || parts[0] == "cli" {
                return None;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let text = match text.find("#[cfg(test)]") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            Some((parts, text))
        })
        .collect()
}

/// The module paths a file names: `crate::a::b` and `super::b`, resolved
/// (types and functions dropped: only lower-case path segments are kept).
fn references(module: &[String], text: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (start, _) in text.match_indices("crate::").chain(text.match_indices("super::")) {
        if start > 0 && text[..start].chars().last().is_some_and(word) {
            continue;
        }
        let rest = &text[start..];
        let path: Vec<&str> = rest
            .split(|c: char| !(word(c) || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .filter(|s| !s.is_empty())
            .collect();
        let (base, tail): (Vec<String>, &[&str]) = if path[0] == "crate" {
            (vec![], &path[1..])
        } else {
            // `super` of module `a::b` is `a`, whether `b` is a file or a
            // folder's mod.rs.
            let supers = path.iter().take_while(|s| **s == "super").count();
            let mut base = module.to_vec();
            for _ in 0..supers {
                base.pop();
            }
            (base, &path[supers..])
        };
        let mut full = base;
        full.extend(
            tail.iter()
                .filter(|s| s.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                .map(|s| s.to_string()),
        );
        if !full.is_empty() {
            out.insert(full);
        }
    }
    out
}

/// Imports against the layers, one line each.
fn layer_violations(files: &[(Vec<String>, String)]) -> Vec<String> {
    let mut wrong = vec![];
    for (module, text) in files {
        let own = &module[0];
        let Some(own_layer) = layer_of(own) else {
            wrong.push(format!("src/{} is in no layer: add `{own}` to LAYERS", module.join("/")));
            continue;
        };
        for r in references(module, text) {
            let other = &r[0];
            if other != own && layer_of(other).is_some_and(|l| l >= own_layer) {
                wrong.push(format!("{} uses {} (same or higher layer)", module.join("::"), r.join("::")));
            }
        }
    }
    wrong
}

#[test]
fn layers_only_point_down() {
    let wrong = layer_violations(&sources());
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    // Edges between sibling files of one module (a folder's mod.rs and its
    // children may share types both ways: that is how a Rust module is
    // built; across modules, the layers test already forbids circles).
    let files = sources();
    let names: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in &files {
        if module.len() < 2 {
            continue;
        }
        for r in references(module, text) {
            // The file the path lands in: the longest known module prefix.
            let target = (1..=r.len()).rev().map(|n| r[..n].to_vec()).find(|p| names.contains(p));
            if let Some(t) = target {
                let siblings = t.len() == module.len() && t[..t.len() - 1] == module[..module.len() - 1];
                if siblings && &t != module {
                    edges.entry(module.clone()).or_default().insert(t);
                }
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m) {
                Some(1) => {
                    let i = stack.iter().position(|s| s == m).unwrap();
                    let mut c: Vec<String> = stack[i..].iter().map(|s| s.join("::")).collect();
                    c.push(m.join("::"));
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if !state.contains_key(n) {
            if let Some(c) = visit(n, &edges, &mut state, &mut vec![]) {
                panic!("files import each other in a circle: {}", c.join(" -> "));
            }
        }
    }
}

#[test]
fn an_import_against_the_layers_is_caught() {
    // The tests above must be able to fail: an input file naming the
    // engine, and a rules file naming the findings, are caught; a sibling
    // and a lower layer are not.
    let file = |m: &str, text: &str| (m.split("::").map(String::from).collect::<Vec<_>>(), text.to_string());
    let wrong = layer_violations(&[
        file(
            "input::read",
            "use crate::engine::prepare::APP_PREFIX;\nuse super::values::parse_money;",
        ),
        file(
            "rules::load",
            "let x = crate::findings::message::placeholders(t); use crate::input::InputKind;",
        ),
    ]);
    assert_eq!(
        wrong,
        [
            "input::read uses engine::prepare (same or higher layer)",
            "rules::load uses findings::message::placeholders (same or higher layer)"
        ]
    );
}
