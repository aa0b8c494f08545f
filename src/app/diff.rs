//! `rules diff`: what a change to the pack does to the findings on real
//! data. Both packs run on the same parsed inputs; findings are matched
//! by fingerprint.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use super::evaluate::evaluate;
use super::inputs::read_inputs;
use super::options::ScanOptions;
use super::pack::{checked_pack, load_references};
use crate::findings::Finding;
use crate::output::progress::Progress;
use crate::rules::load::RulePack;
use crate::Error;

/// A finding as the diff lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindingRef {
    pub fingerprint: String,
    pub merchant_id: Option<String>,
    pub entity_id: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleChange {
    Added,
    Removed,
    Changed,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleDiff {
    pub rule_id: String,
    pub change: RuleChange,
    /// The rule is `status: shadow` in the new pack: its findings would be
    /// written apart, outside the exit code.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    pub base_findings: usize,
    pub new_findings: usize,
    pub added: Vec<FindingRef>,
    pub removed: Vec<FindingRef>,
    pub unchanged: usize,
}

#[derive(Debug, Serialize)]
pub struct PackDiff {
    pub base: String,
    pub new: String,
    pub data: String,
    pub as_of: String,
    pub reference_tables_changed: Vec<String>,
    pub added: usize,
    pub removed: usize,
    pub unchanged: usize,
    /// Findings of the new pack's shadow rules (counted in the above too).
    pub shadow_findings: usize,
    pub rules: Vec<RuleDiff>,
}

/// A rule's definition without its test cases: a change to the cases alone
/// does not change findings.
fn definition(pack: &RulePack, id: &str) -> Option<serde_json::Value> {
    pack.rules.iter().find(|r| r.rule.id == id).map(|r| {
        let mut rule = r.rule.clone();
        rule.tests.clear();
        serde_json::to_value(&rule).unwrap_or_default()
    })
}

fn refs(fs: &[&Finding]) -> Vec<FindingRef> {
    let mut v: Vec<FindingRef> = fs
        .iter()
        .map(|f| FindingRef {
            fingerprint: f.fingerprint.clone(),
            merchant_id: f.merchant_id.clone(),
            entity_id: f.entity_id.clone(),
            message: f.message.clone(),
        })
        .collect();
    v.sort();
    v
}

pub(crate) struct Side<'a> {
    pub label: String,
    pub pack: &'a RulePack,
    pub findings: &'a [Finding],
    /// Reference table name -> sha256 of the file used.
    pub tables: BTreeMap<String, String>,
}

pub(crate) fn compare(base: Side, new: Side, data: &str, as_of: &str) -> PackDiff {
    let ids: BTreeSet<&str> = base
        .pack
        .rules
        .iter()
        .chain(new.pack.rules.iter())
        .map(|r| r.rule.id.as_str())
        .collect();
    let mut rules = Vec::new();
    for id in ids {
        let (b_def, n_def) = (definition(base.pack, id), definition(new.pack, id));
        let change = match (&b_def, &n_def) {
            (None, Some(_)) => RuleChange::Added,
            (Some(_), None) => RuleChange::Removed,
            (Some(a), Some(b)) if a != b => RuleChange::Changed,
            _ => RuleChange::Unchanged,
        };
        let b: Vec<&Finding> = base.findings.iter().filter(|f| f.rule_id == id).collect();
        let n: Vec<&Finding> = new.findings.iter().filter(|f| f.rule_id == id).collect();
        let b_fp: BTreeSet<&str> = b.iter().map(|f| f.fingerprint.as_str()).collect();
        let n_fp: BTreeSet<&str> = n.iter().map(|f| f.fingerprint.as_str()).collect();
        let added: Vec<&Finding> = n.iter().copied().filter(|f| !b_fp.contains(f.fingerprint.as_str())).collect();
        let removed: Vec<&Finding> = b.iter().copied().filter(|f| !n_fp.contains(f.fingerprint.as_str())).collect();
        let shadow = new
            .pack
            .rules
            .iter()
            .any(|r| r.rule.id == id && r.rule.status == crate::rules::model::Lifecycle::Shadow);
        rules.push(RuleDiff {
            rule_id: id.to_string(),
            change,
            shadow,
            base_findings: b.len(),
            new_findings: n.len(),
            unchanged: b_fp.intersection(&n_fp).count(),
            added: refs(&added),
            removed: refs(&removed),
        });
    }
    let tables: BTreeSet<&String> = base.tables.keys().chain(new.tables.keys()).collect();
    PackDiff {
        base: base.label,
        new: new.label,
        data: data.to_string(),
        as_of: as_of.to_string(),
        reference_tables_changed: tables
            .into_iter()
            .filter(|t| base.tables.get(*t) != new.tables.get(*t))
            .cloned()
            .collect(),
        added: rules.iter().map(|r| r.added.len()).sum(),
        removed: rules.iter().map(|r| r.removed.len()).sum(),
        unchanged: rules.iter().map(|r| r.unchanged).sum(),
        shadow_findings: rules.iter().filter(|r| r.shadow).map(|r| r.new_findings).sum(),
        rules,
    }
}

fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Markdown for a pull request: a table of the rules whose findings or
/// definitions changed, then the added and removed findings.
pub fn markdown(d: &PackDiff, max_listed: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## posaudit rules diff\n");
    let _ = writeln!(s, "Base `{}` against `{}` on `{}` as of {}.\n", d.base, d.new, d.data, d.as_of);
    let _ = writeln!(
        s,
        "**{} findings added, {} removed, {} unchanged.**\n",
        d.added, d.removed, d.unchanged
    );
    if d.shadow_findings > 0 {
        let _ = writeln!(
            s,
            "{} of the new pack's findings come from shadow rules (written apart, outside the exit code).\n",
            d.shadow_findings
        );
    }
    if !d.reference_tables_changed.is_empty() {
        let _ = writeln!(s, "Reference tables changed: {}.\n", d.reference_tables_changed.join(", "));
    }
    let touched: Vec<&RuleDiff> = d
        .rules
        .iter()
        .filter(|r| r.change != RuleChange::Unchanged || r.shadow || !r.added.is_empty() || !r.removed.is_empty())
        .collect();
    if touched.is_empty() {
        let _ = writeln!(s, "No rule and no finding changed.");
        return s;
    }
    let _ = writeln!(s, "| rule | rule change | base | new | added | removed | unchanged |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
    for r in &touched {
        let change = serde_json::to_value(r.change)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "| {}{} | {} | {} | {} | {} | {} | {} |",
            r.rule_id,
            if r.shadow { " (shadow)" } else { "" },
            change,
            r.base_findings,
            r.new_findings,
            r.added.len(),
            r.removed.len(),
            r.unchanged
        );
    }
    for r in &touched {
        for (title, list) in [("added", &r.added), ("removed", &r.removed)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "\n<details><summary>{} {}: {} findings</summary>\n",
                r.rule_id,
                title,
                list.len()
            );
            for f in list.iter().take(max_listed) {
                let _ = writeln!(s, "- `{}` {}", &f.fingerprint[..12.min(f.fingerprint.len())], md(&f.message));
            }
            if list.len() > max_listed {
                let _ = writeln!(s, "- ... and {} more (see the JSON)", list.len() - max_listed);
            }
            let _ = writeln!(s, "\n</details>");
        }
    }
    s
}

/// A problem with the base revision or folder: the user's to fix.
fn usage(message: String) -> Error {
    Error::Usage(message)
}

fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|e| usage(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(usage(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// The base pack's folders: `base` itself if it is a folder, else the same
/// folders as the new pack, taken from git revision `base` into `tmp`.
pub(crate) fn materialize_base(base: &str, new_dirs: &[PathBuf], tmp: &Path) -> Result<Vec<PathBuf>, Error> {
    let as_dir = PathBuf::from(base);
    if as_dir.is_dir() {
        return Ok(vec![as_dir]);
    }
    let mut out = Vec::new();
    for dir in new_dirs {
        let abs = std::fs::canonicalize(dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
        let top = String::from_utf8_lossy(&git(&abs, &["rev-parse", "--show-toplevel"])?)
            .trim()
            .to_string();
        let top = std::fs::canonicalize(&top).map_err(|e| usage(format!("{top}: {e}")))?;
        let rel = abs
            .strip_prefix(&top)
            .map_err(|_| usage(format!("{} is not inside the git repository {}", abs.display(), top.display())))?;
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        let list = git(&top, &["ls-tree", "-r", "--name-only", base, "--", &rel_s])?;
        let files: Vec<String> = String::from_utf8_lossy(&list).lines().map(str::to_string).collect();
        if files.is_empty() {
            return Err(usage(format!("revision `{base}` has no files under {rel_s}")));
        }
        for f in files {
            let bytes = git(&top, &["show", &format!("{base}:{f}")])?;
            let target = tmp.join(&f);
            std::fs::create_dir_all(target.parent().unwrap_or(tmp)).map_err(|e| Error::Output(tmp.to_path_buf(), e))?;
            std::fs::write(&target, bytes).map_err(|e| Error::Output(tmp.to_path_buf(), e))?;
        }
        out.push(tmp.join(rel));
    }
    Ok(out)
}

/// `rules diff`: run the base pack and the new pack on the same inputs.
pub fn diff(base: &str, opts: &ScanOptions) -> Result<PackDiff, Error> {
    let new_dirs: Vec<PathBuf> = if opts.rules.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        opts.rules.clone()
    };
    let tmp = tempfile::tempdir().map_err(|e| Error::Output(std::env::temp_dir(), e))?;
    let base_dirs = materialize_base(base, &new_dirs, tmp.path())?;
    let base_opts = ScanOptions {
        rules: base_dirs,
        ..opts.clone()
    };
    let new_opts = ScanOptions {
        rules: new_dirs,
        ..opts.clone()
    };
    let mut packs = None;
    let inputs = read_inputs(opts, &Progress::silent(), &|_, _, df| Ok(Some(df)), |extras| {
        packs = Some((
            checked_pack(&base_opts.rules, extras, opts.as_of)?.0,
            checked_pack(&new_opts.rules, extras, opts.as_of)?.0,
        ));
        Ok(())
    })?;
    let (base_pack, new_pack) = packs.expect("packs are checked before data is read");
    let run = |o: &ScanOptions, pack: &RulePack| -> Result<(Vec<Finding>, BTreeMap<String, String>), Error> {
        let refs = load_references(&inputs.plan, &o.rules, &o.reference)?;
        let tables = refs.origins.iter().map(|r| (r.table.clone(), r.sha256.clone())).collect();
        let frames = inputs.loaded.frames.clone();
        Ok((
            evaluate(pack, &refs, frames, &inputs.loaded.stats, opts.as_of, &Progress::silent(), &[])?.0,
            tables,
        ))
    };
    let (base_findings, base_tables) = run(&base_opts, &base_pack)?;
    let (new_findings, new_tables) = run(&new_opts, &new_pack)?;
    let base_label = if PathBuf::from(base).is_dir() {
        base.to_string()
    } else {
        format!("git:{base}")
    };
    Ok(compare(
        Side {
            label: base_label,
            pack: &base_pack,
            findings: &base_findings,
            tables: base_tables,
        },
        Side {
            label: new_opts.rules.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(","),
            pack: &new_pack,
            findings: &new_findings,
            tables: new_tables,
        },
        &opts.dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
        &opts.as_of.to_string(),
    ))
}
