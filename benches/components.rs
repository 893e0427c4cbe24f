//! In-process benchmarks (criterion) of the ingest path's parts, on one
//! batch (4 096 lines) of the realistic spool the whole-process replay
//! benchmark uses:
//!
//! - `parse`: envelope validation of each line (`envelope::parse`);
//! - `classify`: recognition of each parsed envelope (`Recogniser::recognise`,
//!   built-in rules, no registry);
//! - `ingest_batch`: one batch end to end into a fresh database — parse,
//!   classify, the `events`, `calls`, … rows, rollups and the file offset in
//!   one transaction (`Ingestor::ingest_file`).
//!
//! - `fingerprint`: copy-detection fingerprints of a 40 KB Python file, the
//!   work the hook adds to a Write of code (`Fingerprints::of`).
//!
//! `cargo bench --bench components` (add `-- parse` etc. for one of them).

use std::path::Path;

use call_monitor::contract as envelope;
use call_monitor::ingest::Ingestor;
use call_monitor::recognise::rules::Rules;
use call_monitor::recognise::ArgsKey;
use call_monitor::recognise::Catalog;
use call_monitor::recognise::Recogniser;
use call_monitor::store::{Database, Missing};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

#[path = "support/mod.rs"]
mod support;

const LINES: usize = call_monitor::ingest::BATCH_LINES;

fn spool() -> Vec<u8> {
    let mut out = Vec::new();
    support::write_realistic_spool(&mut out, LINES);
    out
}

fn lines(spool: &[u8]) -> Vec<&[u8]> {
    spool
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

fn recogniser() -> Recogniser {
    Recogniser::new(Rules::builtin(), Catalog::default(), ArgsKey::ephemeral())
}

fn parse(c: &mut Criterion) {
    let spool = spool();
    let lines = lines(&spool);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("envelope", |b| {
        b.iter(|| {
            for line in &lines {
                std::hint::black_box(envelope::parse(line).expect("valid line"));
            }
        })
    });
    group.finish();
}

fn classify(c: &mut Criterion) {
    let spool = spool();
    let envelopes: Vec<_> = lines(&spool)
        .into_iter()
        .map(|l| envelope::parse(l).expect("valid line"))
        .collect();
    let recogniser = recogniser();
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(envelopes.len() as u64));
    group.bench_function("recognise", |b| {
        b.iter(|| {
            for env in &envelopes {
                std::hint::black_box(recogniser.recognise(env));
            }
        })
    });
    group.finish();
}

/// A fresh database and spool file per iteration (not timed).
struct Fresh {
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
    ingestor: Ingestor,
}

fn fresh(spool: &[u8]) -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("batch.jsonl");
    std::fs::write(&file, spool).expect("write spool");
    let db = Database::open(&dir.path().join("ops.db"), Missing::Create).expect("db");
    let ingestor = Ingestor::new(db.into_conn(), recogniser(), dir.path().join("quarantine"));
    Fresh {
        _dir: dir,
        file,
        ingestor,
    }
}

fn ingest(c: &mut Criterion) {
    let spool = spool();
    let mut group = c.benchmark_group("insert");
    group.throughput(Throughput::Elements(LINES as u64));
    group.sample_size(20);
    group.bench_function("ingest_batch", |b| {
        b.iter_batched(
            || fresh(&spool),
            |mut f| {
                let progress = f
                    .ingestor
                    .ingest_file(Path::new(&f.file), &|| false, &mut |_| {})
                    .expect("ingest");
                assert_eq!(f.ingestor.totals().inserted, LINES as u64);
                (progress, f)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn fingerprint(c: &mut Criterion) {
    use call_monitor::contract::code::{Fingerprints, Lang};
    let source = support::python_source(40 * 1024);
    let mut group = c.benchmark_group("fingerprint");
    group.throughput(Throughput::Bytes(source.len() as u64));
    group.bench_function("python_40k", |b| {
        b.iter(|| std::hint::black_box(Fingerprints::of(&source, Lang::Python)))
    });
    group.finish();
}

criterion_group!(benches, parse, classify, ingest, fingerprint);
criterion_main!(benches);
