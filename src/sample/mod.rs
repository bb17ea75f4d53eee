//! Deterministic synthetic data: a Banten population and the agency files built from it.
//!
//! [`generate`] builds families and persons in real Banten villages (Kemendagri codes), then
//! writes what each agency would hold: the civil registry (clean identity master), the
//! welfare registry (DTKS), the PKH and BPNT beneficiary lists, PBI-JKN members, the
//! provincial Jamsosratu spreadsheet and a local complaint list, each with the noise that
//! real extracts carry (typos, name variants, old spelling, spreadsheet-damaged NIKs, stale
//! KK numbers, dead recipients, duplicates). `truth.csv` says which person and family every
//! record is and which noise it carries, so matching and reports can be scored.
//!
//! The same `persons` and `seed` always give byte-identical files: the generator uses its own
//! PRNG (`rng.rs`), a fixed reference date (2025-10-31) and never iterates a hash map to
//! produce output. Rates are data, in constant tables (`population.rs`, `noise.rs`).

mod calendar;
mod names;
mod noise;
mod population;
mod rng;
mod sources;
mod writers;

use std::path::PathBuf;

use population::Population;
use writers::Truth;

/// Largest population [`generate`] accepts (memory stays well under 4 GB).
pub const MAX_PERSONS: usize = 50_000_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SampleConfig {
    /// Number of persons in the population (the civil registry has exactly this many rows).
    pub persons: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// Output folder (created if missing).
    pub out: PathBuf,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct SampleSummary {
    /// The seven source files, in generation order (`truth.csv` and `generator.json` are
    /// written beside them in the output folder).
    pub files: Vec<GeneratedFile>,
    /// Persons generated.
    pub persons: usize,
    /// Families (KK) generated.
    pub families: usize,
}

/// One generated source file.
#[derive(Debug, Clone)]
pub struct GeneratedFile {
    /// Source name as used in `truth.csv`: dukcapil, dtks, pkh, bpnt, pbi, jamsosratu,
    /// pengaduan.
    pub source: String,
    /// Full path of the file (the output folder joined with its relative path).
    pub path: PathBuf,
    /// Data rows (header and title lines excluded).
    pub rows: u64,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// A file or folder could not be created or written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The spreadsheet writer failed.
    #[error("cannot write {path}: {message}")]
    Xlsx {
        /// The spreadsheet.
        path: PathBuf,
        /// What the writer reported.
        message: String,
    },
    /// The settings cannot produce a sample.
    #[error("invalid sample settings: {0}")]
    Settings(String),
}

/// Generates the population and writes every sample file into `cfg.out`.
///
/// `progress` is called every 10,000 persons written to the civil registry, and once at the
/// end with the total.
pub fn generate(cfg: &SampleConfig, progress: &dyn Fn(u64)) -> Result<SampleSummary, SampleError> {
    if cfg.persons == 0 {
        return Err(SampleError::Settings("persons must be at least 1".into()));
    }
    if cfg.persons > MAX_PERSONS {
        return Err(SampleError::Settings(format!(
            "persons must be at most {MAX_PERSONS}"
        )));
    }
    std::fs::create_dir_all(&cfg.out).map_err(|e| writers::io_error(&cfg.out, e))?;
    let pop = Population::build(cfg.persons, cfg.seed)?;
    let dir = cfg.out.as_path();
    let mut truth = Truth::create(dir)?;
    let files = vec![
        sources::dukcapil(&pop, dir, &mut truth, progress)?,
        sources::dtks(&pop, dir, cfg.seed, &mut truth)?,
        sources::kpm(&pop, dir, cfg.seed, &mut truth, sources::Kpm::Pkh)?,
        sources::kpm(&pop, dir, cfg.seed, &mut truth, sources::Kpm::Bpnt)?,
        sources::pbi(&pop, dir, cfg.seed, &mut truth)?,
        sources::jamsosratu(&pop, dir, cfg.seed, &mut truth)?,
        sources::pengaduan(&pop, dir, cfg.seed, &mut truth)?,
    ];
    truth.finish()?;
    writers::write_manifest(cfg, pop.families.len(), &files)?;
    progress(cfg.persons as u64);
    Ok(SampleSummary {
        files,
        persons: cfg.persons,
        families: pop.families.len(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn run(dir: &std::path::Path) -> SampleSummary {
        let cfg = SampleConfig {
            persons: 300,
            seed: 20_251_031,
            out: dir.to_path_buf(),
        };
        generate(&cfg, &|_| {}).expect("generate")
    }

    #[test]
    fn small_sample_is_complete_consistent_and_reproducible() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        let summary = run(a.path());
        run(b.path());
        assert_eq!(summary.persons, 300);
        assert_eq!(summary.files.len(), 7);
        for file in &summary.files {
            assert!(file.path.is_file(), "{}", file.path.display());
        }
        assert!(a.path().join("generator.json").is_file());

        // truth.csv: one line per data row, row numbers inside the files.
        let truth = std::fs::read_to_string(a.path().join("truth.csv")).expect("truth");
        let lines: Vec<&str> = truth.lines().skip(1).collect();
        let total: u64 = summary.files.iter().map(|f| f.rows).sum();
        assert_eq!(lines.len() as u64, total);
        let rows: HashMap<&str, u64> = summary
            .files
            .iter()
            .map(|f| (f.source.as_str(), f.rows))
            .collect();
        for line in &lines {
            let cols: Vec<&str> = line.split(',').collect();
            assert_eq!(cols.len(), 5, "{line}");
            let n = rows[cols[0]];
            let row: u64 = cols[1].parse().expect("row");
            let (first, last) = match cols[0] {
                "jamsosratu" => (5, n + 4),
                "pengaduan" => (1, n),
                _ => (2, n + 1),
            };
            assert!((first..=last).contains(&row), "{line}");
            assert!(
                cols[2].starts_with('P') && cols[3].starts_with('F'),
                "{line}"
            );
        }
        assert_eq!(rows["dukcapil"], 300);

        // CSV line counts match the rows reported.
        for file in summary
            .files
            .iter()
            .filter(|f| f.path.extension().is_some_and(|e| e == "csv"))
        {
            let text = std::fs::read_to_string(&file.path).expect("csv");
            assert_eq!(
                text.lines().count() as u64,
                file.rows + 1,
                "{}",
                file.source
            );
        }

        // Same seed, same bytes.
        // (The spreadsheet too: its creation date is fixed and rust_xlsxwriter zips with a
        // fixed timestamp.)
        for file in &summary.files {
            let rel = file.path.strip_prefix(a.path()).expect("relative");
            let left = std::fs::read(&file.path).expect("read");
            let right = std::fs::read(b.path().join(rel)).expect("read");
            assert!(left == right, "{} differs between runs", file.source);
        }
        let left = std::fs::read(a.path().join("truth.csv")).expect("read");
        let right = std::fs::read(b.path().join("truth.csv")).expect("read");
        assert!(left == right, "truth.csv differs between runs");
    }

    #[test]
    fn zero_persons_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = SampleConfig {
            persons: 0,
            seed: 1,
            out: dir.path().to_path_buf(),
        };
        assert!(matches!(
            generate(&cfg, &|_| {}),
            Err(SampleError::Settings(_))
        ));
    }
}
