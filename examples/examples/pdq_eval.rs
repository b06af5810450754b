//! Evaluate the engine's PDQ hashing against ThreatExchange's public test
//! images and the hashes Meta's C++ implementation gives them.
//!
//! ```text
//! cargo run --release -p enforcer-examples --example pdq_eval -- [DATA_DIR]
//! ```
//!
//! `DATA_DIR` (default `../shared/data/pdq`) holds `bridge-mods/`,
//! `misc-images/`, `reg-test-input/` and `pdqhash-python-vectors.csv`
//! (`path,pdq_hex,quality,...`: the reference hash and quality of each
//! image). Every image is hashed from its bytes with default limits, and
//! four checks are made; the example exits non-zero if any fails:
//!
//! * (a) every edited copy of the bridge photo (`bridge-mods/*`, and the
//!   unrotated copy in `reg-test-input/dih/`) is within 31 bits of
//!   `bridge-mods/aaa-orig.jpg`, the match threshold;
//! * (b) the unrelated photos (`misc-images/*`, `labelme-subset/*`, and the
//!   rotated and flipped bridges) are not;
//! * (c) every image whose reference quality is 49 or less also gets a
//!   quality of 49 or less here, so it is not matched;
//! * (d) every image whose reference quality is 80 or more hashes within 10
//!   bits of the reference hash.
//!
//! Then it times decoding and hashing separately (median of several runs)
//! for the 1600x1004 bridge photo and a 256x256 photo.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use enforcer::media::{self, ImageLimits, LOW_QUALITY, PdqHash};

/// The match threshold the checks use (`known-hash-match`'s).
const MATCH_DISTANCE: u32 = 31;

/// How far from the reference hash a high-quality image may land.
const MAX_DISTANCE_TO_REFERENCE: u32 = 10;

/// Reference quality from which check (d) applies.
const HIGH_QUALITY: u8 = 80;

/// The original every bridge edit is compared with.
const ORIGINAL: &str = "bridge-mods/aaa-orig.jpg";

/// The unrotated, unflipped copy among the dihedral variants.
const DIH_ORIGINAL: &str = "reg-test-input/dih/bridge-1-original.jpg";

/// Timing runs per image.
const TIMING_RUNS: usize = 31;

/// One row of the reference CSV.
#[derive(serde::Deserialize)]
struct Reference {
    path: String,
    pdq_hex: String,
    quality: u8,
}

/// One image's result.
struct Row {
    path: String,
    ours: PdqHash,
    reference: PdqHash,
}

fn main() -> anyhow::Result<()> {
    let data = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/data/pdq".into()),
    );
    let references = read_references(&data)?;
    let limits = ImageLimits::default();

    let mut rows = Vec::new();
    for reference in references {
        let file = data.join(&reference.path);
        if !file.exists() {
            println!("{}: not in {}; skipped", reference.path, data.display());
            continue;
        }
        let bytes = std::fs::read(&file).with_context(|| file.display().to_string())?;
        let ours = media::hash_image(&bytes, &limits)
            .with_context(|| format!("hashing {}", reference.path))?;
        rows.push(Row {
            path: reference.path,
            ours,
            reference: parse_reference(&reference.pdq_hex, reference.quality)?,
        });
    }
    let Some(original) = rows.iter().find(|row| row.path == ORIGINAL).map(|r| r.ours) else {
        bail!("{ORIGINAL} is missing from {}", data.display());
    };

    let failures = print_table(&rows, &original);
    print_summary(&rows);
    print_timings(&data, &limits)?;

    if failures > 0 {
        bail!("{failures} check(s) failed");
    }
    println!("\nall checks passed");
    Ok(())
}

fn read_references(data: &Path) -> anyhow::Result<Vec<Reference>> {
    let csv_path = data.join("pdqhash-python-vectors.csv");
    let mut reader =
        csv::Reader::from_path(&csv_path).with_context(|| csv_path.display().to_string())?;
    reader
        .deserialize()
        .collect::<Result<_, _>>()
        .with_context(|| csv_path.display().to_string())
}

fn parse_reference(hex_digits: &str, quality: u8) -> anyhow::Result<PdqHash> {
    let bytes = hex::decode(hex_digits).with_context(|| format!("reference hash {hex_digits}"))?;
    let hash = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("reference hash {hex_digits} is not 32 bytes"))?;
    Ok(PdqHash { hash, quality })
}

/// Which of the checks an image is subject to, and whether it passes each.
fn verdicts(row: &Row, original: &PdqHash) -> Vec<(char, bool)> {
    let to_original = row.ours.distance(original);
    let mut verdicts = Vec::new();
    if row.path.starts_with("bridge-mods/") || row.path == DIH_ORIGINAL {
        verdicts.push(('a', to_original <= MATCH_DISTANCE));
    } else if row.path.starts_with("misc-images/")
        || row.path.starts_with("reg-test-input/labelme-subset/")
        || row.path.starts_with("reg-test-input/dih/")
    {
        verdicts.push(('b', to_original > MATCH_DISTANCE));
    }
    if row.reference.quality <= LOW_QUALITY {
        verdicts.push(('c', row.ours.quality <= LOW_QUALITY));
    }
    if row.reference.quality >= HIGH_QUALITY {
        verdicts.push((
            'd',
            row.ours.distance(&row.reference) <= MAX_DISTANCE_TO_REFERENCE,
        ));
    }
    verdicts
}

/// Print one line per image; returns how many checks failed.
fn print_table(rows: &[Row], original: &PdqHash) -> usize {
    println!(
        "{:<44} {:<64} {:>4} {:>4} {:>5} {:>6}  checks",
        "path", "our hash", "q", "refq", "d_ref", "d_orig"
    );
    let mut failures = 0;
    for row in rows {
        let verdicts = verdicts(row, original);
        failures += verdicts.iter().filter(|(_, passed)| !passed).count();
        let checks: Vec<String> = verdicts
            .iter()
            .map(|(check, passed)| format!("{check}:{}", if *passed { "ok" } else { "FAIL" }))
            .collect();
        println!(
            "{:<44} {} {:>4} {:>4} {:>5} {:>6}  {}",
            row.path,
            row.ours,
            row.ours.quality,
            row.reference.quality,
            row.ours.distance(&row.reference),
            row.ours.distance(original),
            checks.join(" ")
        );
    }
    failures
}

fn print_summary(rows: &[Row]) {
    let high: Vec<u32> = rows
        .iter()
        .filter(|row| row.reference.quality >= HIGH_QUALITY)
        .map(|row| row.ours.distance(&row.reference))
        .collect();
    let mean = f64::from(high.iter().sum::<u32>()) / high.len().max(1) as f64;
    let exact = high.iter().filter(|&&d| d == 0).count();
    let quality_gap = rows
        .iter()
        .map(|row| row.ours.quality.abs_diff(row.reference.quality))
        .max()
        .unwrap_or(0);
    println!(
        "\n{} images hashed; of the {} with reference quality >= {HIGH_QUALITY}: distance to \
         the reference hash max {}, mean {mean:.2}, {exact} identical; largest quality \
         difference {quality_gap}",
        rows.len(),
        high.len(),
        high.iter().max().copied().unwrap_or(0),
    );
}

/// Median decode and hash times for two sizes of photo.
fn print_timings(data: &Path, limits: &ImageLimits) -> anyhow::Result<()> {
    println!("\ntimings (median of {TIMING_RUNS} runs):");
    for path in [ORIGINAL, "reg-test-input/labelme-subset/q0122.jpg"] {
        let bytes = std::fs::read(data.join(path)).with_context(|| path.to_string())?;
        let mut decode_times = Vec::with_capacity(TIMING_RUNS);
        let mut hash_times = Vec::with_capacity(TIMING_RUNS);
        let mut size = (0, 0);
        for _ in 0..TIMING_RUNS {
            let started = Instant::now();
            let image = media::decode(&bytes, limits)?;
            decode_times.push(started.elapsed());
            let started = Instant::now();
            std::hint::black_box(media::hash_decoded(&image));
            hash_times.push(started.elapsed());
            size = (image.width(), image.height());
        }
        println!(
            "  {path} ({}x{}, {} bytes): decode {}, hash {}",
            size.0,
            size.1,
            bytes.len(),
            format_ms(median(&mut decode_times)),
            format_ms(median(&mut hash_times)),
        );
    }
    Ok(())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn format_ms(time: Duration) -> String {
    format!("{:.2} ms", time.as_secs_f64() * 1e3)
}
