//! Query latency of the exact hash index against a linear scan over the same
//! hashes, in the same run and on one thread, with every query's results
//! compared between the two.
//!
//! ```text
//! cargo run --release -p enforcer-examples --example hash_index -- \
//!     --haystack /path/to/haystack.txt --needles /path/to/needles.txt
//! ```
//!
//! Each bank is `--sizes` uniformly random hashes (from `--seed`) plus the
//! hashes of `--haystack`, real PDQ hashes one per line in hex. The queries
//! are the hashes of `--needles`, then near-copies of bank entries (1 to 31
//! random bits flipped) and random hashes, half and half. Any query on which
//! the index and the scan disagree makes the run fail.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use enforcer::banks::index::{self as hash_index, HashIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A 256-bit hash.
type Hash = enforcer::banks::Pdq;

/// The allocator the `enforcer` server uses.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure the exact hash index against a linear scan.
#[derive(Parser)]
struct Args {
    /// Random hashes per bank, one bank per size.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    sizes: Vec<usize>,
    /// Queries per bank, needles included.
    #[arg(long, default_value_t = 2000)]
    queries: usize,
    /// Real PDQ hashes added to every bank (hex, one per line).
    #[arg(long)]
    haystack: Option<PathBuf>,
    /// Real PDQ hashes queried first (hex, one per line).
    #[arg(long)]
    needles: Option<PathBuf>,
    /// Seed for the random hashes and queries.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Largest distance a match may have, in bits.
    #[arg(long, default_value_t = 31)]
    distance: u32,
}

/// Where a query came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Needle,
    NearCopy,
    Random,
}

const KINDS: [Kind; 3] = [Kind::Needle, Kind::NearCopy, Kind::Random];

/// One query's timings and what it found.
struct Sample {
    kind: Kind,
    index: Duration,
    scan: Duration,
    matches: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let haystack = read_hashes(args.haystack.as_deref())?;
    let needles = read_hashes(args.needles.as_deref())?;
    println!(
        "distance {}, {} haystack hashes, {} needles, seed {}, one thread",
        args.distance,
        haystack.len(),
        needles.len(),
        args.seed
    );
    for &size in &args.sizes {
        run_bank(&args, size, &haystack, &needles)?;
    }
    Ok(())
}

/// Build one bank, query it both ways and report.
fn run_bank(args: &Args, size: usize, haystack: &[Hash], needles: &[Hash]) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ size as u64);
    let mut bank: Vec<Hash> = (0..size).map(|_| random_hash(&mut rng)).collect();
    bank.extend_from_slice(haystack);

    let rss_before = resident_bytes();
    let started = Instant::now();
    let (index, order) = HashIndex::build(bank.clone());
    let build = started.elapsed();
    let rss_delta = resident_bytes()
        .zip(rss_before)
        .map(|(after, before)| after.saturating_sub(before));
    ensure!(order.len() == bank.len(), "the index left hashes out");

    let queries = make_queries(args.queries, needles, &bank, &mut rng);
    let samples = measure(&index, &order, &bank, &queries, args.distance)?;

    println!();
    println!(
        "bank of {} hashes ({size} random + {} haystack)",
        bank.len(),
        haystack.len()
    );
    println!("  build:            {:.0} ms", build.as_secs_f64() * 1e3);
    println!(
        "  memory:           {:.1} bytes/hash ({:.1} MiB)",
        index.memory_bytes() as f64 / bank.len() as f64,
        index.memory_bytes() as f64 / (1 << 20) as f64
    );
    match rss_delta {
        Some(delta) => println!(
            "  RSS growth:       {:.1} bytes/hash over the build",
            delta as f64 / bank.len() as f64
        ),
        None => println!("  RSS growth:       not available"),
    }
    report(&samples);
    Ok(())
}

/// Time every query through the index and through the scan, alternating so
/// that the machine's noise falls on both alike, and compare their results.
fn measure(
    index: &HashIndex,
    order: &[u32],
    bank: &[Hash],
    queries: &[(Kind, Hash)],
    distance: u32,
) -> anyhow::Result<Vec<Sample>> {
    let mut found = Vec::new();
    let mut expected = Vec::new();
    // Warm the caches and the branch predictors on a few queries first.
    for (_, query) in queries.iter().take(20) {
        index.search(query, distance, &mut found);
        hash_index::linear_scan(bank, query, distance, &mut expected);
    }
    let mut samples = Vec::with_capacity(queries.len());
    for (n, (kind, query)) in queries.iter().enumerate() {
        found.clear();
        expected.clear();
        let started = Instant::now();
        index.search(query, distance, &mut found);
        let index_time = started.elapsed();
        let started = Instant::now();
        hash_index::linear_scan(bank, query, distance, &mut expected);
        let scan_time = started.elapsed();

        let mut mapped: Vec<(u32, u32)> = found
            .iter()
            .map(|&(position, d)| (order.get(position as usize).copied().unwrap_or(u32::MAX), d))
            .collect();
        mapped.sort_unstable();
        expected.sort_unstable();
        if mapped != expected {
            bail!(
                "query {n} ({kind:?}): the index found {} matches, the scan {}",
                mapped.len(),
                expected.len()
            );
        }
        samples.push(Sample {
            kind: *kind,
            index: index_time,
            scan: scan_time,
            matches: expected.len(),
        });
    }
    Ok(samples)
}

/// Print latencies by query kind and overall, and the speedups.
fn report(samples: &[Sample]) {
    let matched = samples.iter().filter(|s| s.matches > 0).count();
    let total: usize = samples.iter().map(|s| s.matches).sum();
    println!(
        "  queries:          {} ({} needles, {} near-copies, {} random); {matched} matched, {total} matches; all agree with the scan",
        samples.len(),
        count(samples, Kind::Needle),
        count(samples, Kind::NearCopy),
        count(samples, Kind::Random),
    );
    println!(
        "  {:<18}{:>10}{:>10}{:>10}{:>12}{:>12}",
        "µs", "p50", "p99", "max", "scan p50", "scan p99"
    );
    for kind in KINDS {
        let of_kind: Vec<&Sample> = samples.iter().filter(|s| s.kind == kind).collect();
        if !of_kind.is_empty() {
            print_row(&format!("{kind:?}"), &of_kind);
        }
    }
    let all: Vec<&Sample> = samples.iter().collect();
    print_row("all", &all);
    let index = quantiles(all.iter().map(|s| s.index));
    let scan = quantiles(all.iter().map(|s| s.scan));
    println!(
        "  speedup:          {:.0}x at p50, {:.0}x at p99",
        scan.p50.as_secs_f64() / index.p50.as_secs_f64().max(1e-9),
        scan.p99.as_secs_f64() / index.p99.as_secs_f64().max(1e-9)
    );
}

fn count(samples: &[Sample], kind: Kind) -> usize {
    samples.iter().filter(|s| s.kind == kind).count()
}

fn print_row(label: &str, samples: &[&Sample]) {
    let index = quantiles(samples.iter().map(|s| s.index));
    let scan = quantiles(samples.iter().map(|s| s.scan));
    println!(
        "  {label:<18}{:>10.1}{:>10.1}{:>10.1}{:>12.1}{:>12.1}",
        micros(index.p50),
        micros(index.p99),
        micros(index.max),
        micros(scan.p50),
        micros(scan.p99)
    );
}

struct Quantiles {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Exact quantiles (nearest rank) of the durations.
fn quantiles(durations: impl Iterator<Item = Duration>) -> Quantiles {
    let mut sorted: Vec<Duration> = durations.collect();
    sorted.sort_unstable();
    let rank = |q: f64| {
        let i = ((q * sorted.len() as f64).ceil() as usize).saturating_sub(1);
        sorted.get(i).copied().unwrap_or_default()
    };
    Quantiles {
        p50: rank(0.5),
        p99: rank(0.99),
        max: sorted.last().copied().unwrap_or_default(),
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The needles, then near-copies of bank entries and random hashes in turn.
fn make_queries(
    total: usize,
    needles: &[Hash],
    bank: &[Hash],
    rng: &mut ChaCha8Rng,
) -> Vec<(Kind, Hash)> {
    let mut queries: Vec<(Kind, Hash)> = needles
        .iter()
        .take(total)
        .map(|h| (Kind::Needle, *h))
        .collect();
    while queries.len() < total {
        let query = if queries.len().is_multiple_of(2) && !bank.is_empty() {
            let original = bank[rng.random_range(0..bank.len())];
            (
                Kind::NearCopy,
                flip_bits(original, rng.random_range(1..=31), rng),
            )
        } else {
            (Kind::Random, random_hash(rng))
        };
        queries.push(query);
    }
    queries
}

fn random_hash(rng: &mut ChaCha8Rng) -> Hash {
    let mut hash = [0u8; 32];
    rng.fill(&mut hash);
    hash
}

/// `hash` with `flips` distinct bits flipped.
fn flip_bits(mut hash: Hash, flips: u32, rng: &mut ChaCha8Rng) -> Hash {
    let mut flipped = [false; 256];
    let mut done = 0;
    while done < flips.min(256) {
        let bit = rng.random_range(0..256usize);
        if !flipped[bit] {
            flipped[bit] = true;
            hash[bit / 8] ^= 1 << (bit % 8);
            done += 1;
        }
    }
    hash
}

/// Hashes from a file of 64 hex digits per line (blank lines skipped).
fn read_hashes(path: Option<&Path>) -> anyhow::Result<Vec<Hash>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            parse_hex(line.trim())
                .with_context(|| format!("{}:{}: not a 64-digit hex hash", path.display(), n + 1))
        })
        .collect()
}

fn parse_hex(text: &str) -> Option<Hash> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(hash)
}

/// The process's resident memory, from `/proc/self/statm` (Linux; 4 KiB
/// pages).
fn resident_bytes() -> Option<usize> {
    let statm = fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
