//! Criterion benches for the engine's hot paths, on generated data
//! (5,000 merchants, 100,000 transactions over 5 days):
//! parsing the inputs, the derived checks (prepare), a calendar-window
//! rule, a rolling-window rule and a rule on joined application columns.
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

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
