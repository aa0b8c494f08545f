//! Criterion benches for the engine's hot paths, on generated data
//! (5,000 merchants, 100,000 transactions over 5 days):
//! parsing the inputs, the derived checks (prepare), a calendar-window
//! rule, a rolling-window rule and a rule on joined application columns.
//!
//! A second group runs a rolling rule whose every window hits (the worst
//! case for window members) on the same 100,000 transactions held by one
//! merchant, and spread over 1,000: linear rolling windows cost the same.
//!
//! `cargo bench --bench engine`

/// See `posaudit::alloc` for why.
#[global_allocator]
static GLOBAL: posaudit::alloc::MiMalloc = posaudit::alloc::MiMalloc;

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use posaudit::engine::{self, prepare};
use posaudit::input::mapping::Mapping;
use posaudit::input::{self, InputPlan};
use posaudit::rules::load::RulePack;
use posaudit_gen::{generate, GenFormat, GenOptions};

const TXNS: u64 = 100_000;

struct Data {
    _dir: tempfile::TempDir,
    plan: InputPlan,
    pack: RulePack,
    refs: posaudit::input::reference::References,
    as_of: chrono::NaiveDate,
}

fn data() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let start = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    generate(&GenOptions {
        merchants: 5_000,
        days: 5,
        txns_per_day: (TXNS / 5) as usize,
        seed: 1,
        out: out.clone(),
        format: GenFormat::Csv,
        start,
        violation_share: 0.05,
        bad_rows: false,
        lookalikes: false,
    })
    .unwrap();
    let plan = InputPlan::discover(&out).unwrap();
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let pack = posaudit::app::pack::load_pack(std::slice::from_ref(&rules)).into_result().unwrap();
    let refs = posaudit::app::pack::pack_references(&[rules]).unwrap();
    Data {
        _dir: dir,
        plan,
        pack,
        refs,
        as_of: start + chrono::Duration::days(50),
    }
}

fn only(pack: &RulePack, id: &str) -> RulePack {
    RulePack {
        rules: pack.rules.iter().filter(|r| r.rule.id == id).cloned().collect(),
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) {
    let d = data();
    let mapping = Mapping::default();
    let load = || {
        let headers = input::read_headers(&d.plan, &mapping).unwrap();
        engine::in_pool(|| input::load(&d.plan, &mapping, headers)).unwrap()
    };
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TXNS));
    g.bench_function("parse inputs (100k txns, CSV)", |b| b.iter(load));

    let loaded = load();
    let needed = Some(prepare::names_used(&d.pack));
    g.bench_function("derived checks and joins (prepare)", |b| {
        b.iter(|| engine::in_pool(|| prepare::prepare(loaded.frames.clone(), &d.refs, d.as_of, &needed)).unwrap())
    });

    let prepared = prepare::prepare(loaded.frames.clone(), &d.refs, d.as_of, &needed).unwrap();
    for (label, id) in [
        ("calendar-window rule (LIM-QR-01, 1d)", "LIM-QR-01"),
        ("rolling-window rule (SUS-SPLIT-01, 10m)", "SUS-SPLIT-01"),
        ("join rule (SUS-MCC-02, application and MCC columns)", "SUS-MCC-02"),
    ] {
        let pack = only(&d.pack, id);
        g.bench_function(label, |b| b.iter(|| engine::run(&pack, &prepared, &loaded.stats, d.as_of)));
    }
    g.bench_function("whole pack (57 rules)", |b| {
        b.iter(|| engine::run(&d.pack, &prepared, &loaded.stats, d.as_of))
    });
    g.finish();
}

/// 100,000 transactions over 5 days for `merchants` merchants, prepared
/// for the pack in `rules`.
fn prepared_for(merchants: usize, rules: &std::path::Path) -> (tempfile::TempDir, RulePack, prepare::Prepared, Vec<input::FileStats>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let start = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    generate(&GenOptions {
        merchants,
        days: 5,
        txns_per_day: (TXNS / 5) as usize,
        seed: 3,
        out: out.clone(),
        format: GenFormat::Csv,
        start,
        violation_share: 0.0,
        bad_rows: false,
        lookalikes: false,
    })
    .unwrap();
    let plan = InputPlan::discover(&out).unwrap();
    let mapping = Mapping::default();
    let headers = input::read_headers(&plan, &mapping).unwrap();
    let loaded = engine::in_pool(|| input::load(&plan, &mapping, headers)).unwrap();
    let pack = posaudit::app::pack::load_pack(&[rules.to_path_buf()]).into_result().unwrap();
    let refs = posaudit::app::pack::pack_references(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")]).unwrap();
    let needed = Some(prepare::names_used(&pack));
    let prepared = prepare::prepare(loaded.frames, &refs, start + chrono::Duration::days(50), &needed).unwrap();
    (dir, pack, prepared, loaded.stats)
}

fn giant(c: &mut Criterion) {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("ROLL-ALL.yaml"),
        "id: ROLL-ALL\ntitle: every 30-day window of a merchant\nfamily: suspicious_patterns\nseverity: low\n\
         basis: {text: bench}\nsource: transactions\ngroup_by: [merchant_id]\nrolling: 30d\n\
         measures: {refunds: \"SUM(CASE WHEN txn_type = 'refund' THEN amount ELSE 0 END)\"}\n\
         having: \"COUNT(*) >= 1\"\nentity: merchant\nmessage: \"{merchant_id} {count}\"\n\
         tests:\n  - {name: one, transactions: [{}], hits: [M1]}\n  - {name: none, transactions: [], hits: []}\n",
    )
    .unwrap();
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut g = c.benchmark_group("rolling, every window hits");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TXNS));
    for (label, merchants) in [("one merchant of 100k transactions", 1), ("1,000 merchants of 100", 1_000)] {
        let (_dir, pack, prepared, stats) = prepared_for(merchants, rules.path());
        g.bench_function(label, |b| b.iter(|| engine::run(&pack, &prepared, &stats, as_of)));
    }
    g.finish();
}

criterion_group!(engine_benches, benches, giant);
criterion_main!(engine_benches);
