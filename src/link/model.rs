//! The Fellegi-Sunter model as data, and its estimation: m and u per comparison level, the
//! prior, match weights, explanations, and EM.
//!
//! A candidate pair is described by its *gamma row*: for each comparison, the index of the
//! level it landed in ([`Level::index`], 0 = strongest evidence, see [`compare`](super::compare)).
//! For each level the model holds
//! - **m**: the probability of that level among true matches, and
//! - **u**: its probability among non-matches;
//!
//! plus **lambda**, the prior probability of a match (the link stage fits it over candidate pairs
//! and then rescales it to the chance that two random records match, to agree with u). The *match weight*
//! of a pair is `log2(lambda / (1 - lambda)) + sum of log2(m / u)` over its comparisons, the
//! log2 odds that it is a match; [`Model::probability`] turns it into a probability. A *null
//! level* (a value missing on one side) is evidence of nothing: its Bayes factor is 1 and its
//! weight 0, whatever m and u say, and it is left out of the m and u distributions.
//!
//! Estimation follows Splink:
//! 1. [`estimate_u_from_random_pairs`]: u is how often each level happens among random pairs,
//!    which are nearly all non-matches.
//! 2. [`estimate_em`]: expectation-maximisation over the candidate pairs learns lambda and m
//!    (and u, if asked). Identical gamma rows are counted once with a weight, so EM over
//!    millions of pairs iterates over a few thousand patterns.
//!
//! The model is plain data ([`Model`] serialises with serde), saved beside the config so it
//! can be reloaded, diffed and reviewed. [`Model::explain`] gives the weight of a pair as
//! records (prior, one per comparison, total), as in Splink's waterfall chart.
//!
//! Probabilities are kept finite: m and u are clamped to [`PROB_FLOOR`, 1 - `PROB_FLOOR`] (and
//! renormalised) when estimated, and again when a Bayes factor is computed, so a hand-edited
//! model with a zero cannot produce an infinite weight.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::compare::Level;

/// Smallest m or u a level may have: keeps every log2 Bayes factor finite (at most about
/// ±20 bits).
pub const PROB_FLOOR: f64 = 1e-6;

/// Smallest lambda (and 1 - largest) used in weights and EM. Much smaller than
/// [`PROB_FLOOR`]: with broad blocking, a true match rate of one in ten million candidate pairs
/// is plausible.
pub const LAMBDA_FLOOR: f64 = 1e-12;

/// Lambda a new model starts from: one candidate pair in a hundred is a match.
pub const DEFAULT_LAMBDA: f64 = 0.01;

/// Default m of the strongest level, and default u of the weakest non-null level.
const DEFAULT_TOP: f64 = 0.9;

/// The code [`level_spec`] looks for to find the null level of a [`Level`] enum.
const MISSING_CODE: &str = "missing";

/// One comparison's parameters: for each level, its code, m and u.
///
/// Index 0 is the strongest level; the null level (usually the last, `missing`) has m = u = 1
/// and is ignored by the weights and by estimation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonParams {
    /// The comparison's name, e.g. `nik` or `name`.
    pub name: String,
    /// The level codes ([`Level::code`]), strongest first; a gamma value indexes this list.
    pub level_codes: Vec<String>,
    /// P(level | match), per level. Sums to 1 over the non-null levels.
    pub m: Vec<f64>,
    /// P(level | non-match), per level. Sums to 1 over the non-null levels.
    pub u: Vec<f64>,
    /// Index of the level that means "cannot compare" (a value missing), if any.
    pub null_level: Option<usize>,
    /// Keep m as it is during estimation (set by hand, or trusted from elsewhere).
    pub fixed_m: bool,
    /// Keep u as it is during estimation.
    pub fixed_u: bool,
}

impl ComparisonParams {
    /// Number of levels with a code, an m and a u: gamma values from here on are invalid and
    /// treated like the null level.
    fn n_levels(&self) -> usize {
        self.level_codes.len().min(self.m.len()).min(self.u.len())
    }

    /// The level a gamma value stands for, or `None` for the null level and for values out of
    /// range (both are evidence of nothing).
    fn informative_level(&self, gamma: u8) -> Option<usize> {
        let level = usize::from(gamma);
        (level < self.n_levels() && self.null_level != Some(level)).then_some(level)
    }

    /// The indices of the non-null levels, in order.
    fn informative_levels(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n_levels()).filter(|&l| self.null_level != Some(l))
    }
}

/// A Fellegi-Sunter model: the prior and the parameters of every comparison, in the order of
/// the gamma columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Prior probability that a candidate pair (one that survived blocking) is a match.
    pub lambda: f64,
    /// One entry per comparison, in the order of the values in a gamma row.
    pub comparisons: Vec<ComparisonParams>,
}

/// The arguments [`Model::new`] takes for one comparison, built from a [`Level`] enum: its
/// name, the level codes in order, and the index of the level coded `missing` as null level.
pub fn level_spec<L: Level>(name: &str) -> (String, Vec<String>, Option<usize>) {
    let codes: Vec<String> = L::all().iter().map(|l| l.code().to_owned()).collect();
    let null_level = codes.iter().position(|c| c == MISSING_CODE);
    (name.to_owned(), codes, null_level)
}

/// Default m and u for the given levels: m puts [`DEFAULT_TOP`] on the strongest non-null
/// level and halves from there; u mirrors it, with [`DEFAULT_TOP`] on the weakest. EM only
/// needs a start where the strong levels favour matches.
fn default_m_u(n_levels: usize, null_level: Option<usize>) -> (Vec<f64>, Vec<f64>) {
    let informative: Vec<usize> = (0..n_levels).filter(|&l| null_level != Some(l)).collect();
    let mut m = vec![1.0; n_levels];
    let mut u = vec![1.0; n_levels];
    let n = informative.len();
    if n < 2 {
        return (m, u);
    }
    // Halving weights (1/2, 1/4, ...) share 1 - DEFAULT_TOP among the other levels.
    let rest: Vec<f64> = (1..n).map(|j| 0.5_f64.powf(j as f64)).collect();
    let rest_sum: f64 = rest.iter().sum();
    // Probability of the level `steps` away from the favoured one.
    let share = |steps: usize| match steps.checked_sub(1).and_then(|r| rest.get(r)) {
        None => DEFAULT_TOP,
        Some(&w) => (1.0 - DEFAULT_TOP) * w / rest_sum,
    };
    for (j, &level) in informative.iter().enumerate() {
        if let Some(slot) = m.get_mut(level) {
            *slot = share(j);
        }
        if let Some(slot) = u.get_mut(level) {
            *slot = share(n - 1 - j);
        }
    }
    (m, u)
}

impl Model {
    /// A model with default parameters: lambda [`DEFAULT_LAMBDA`], m falling from 0.9 on the
    /// strongest level, u rising to 0.9 on the weakest non-null level, null levels at 1/1.
    ///
    /// Each comparison is `(name, level codes strongest first, null level index)` (see
    /// [`level_spec`]); a null level index past the last level is ignored.
    pub fn new(comparisons: Vec<(String, Vec<String>, Option<usize>)>) -> Self {
        let comparisons = comparisons
            .into_iter()
            .map(|(name, level_codes, null_level)| {
                let null_level = null_level.filter(|&l| l < level_codes.len());
                let (m, u) = default_m_u(level_codes.len(), null_level);
                ComparisonParams {
                    name,
                    level_codes,
                    m,
                    u,
                    null_level,
                    fixed_m: false,
                    fixed_u: false,
                }
            })
            .collect();
        Model {
            lambda: DEFAULT_LAMBDA,
            comparisons,
        }
    }

    /// m / u of a level: how many times more likely this level is among matches than among
    /// non-matches. 1 for the null level, and for a comparison or level that does not exist.
    /// m and u are clamped to [`PROB_FLOOR`, 1] first.
    pub fn bayes_factor(&self, comparison: usize, level: u8) -> f64 {
        self.comparisons
            .get(comparison)
            .and_then(|c| m_u(c, level))
            .map_or(1.0, |(m, u)| m / u)
    }

    /// The prior's weight: log2(lambda / (1 - lambda)), lambda clamped to
    /// [[`LAMBDA_FLOOR`], 1 - [`LAMBDA_FLOOR`]].
    pub fn prior_weight(&self) -> f64 {
        let lambda = clamp_lambda(self.lambda);
        (lambda / (1.0 - lambda)).log2()
    }

    /// The match weight of a gamma row: the prior's weight plus log2(m / u) of each
    /// comparison's level. The row's values pair with the comparisons in order; values past
    /// the last comparison are ignored, and comparisons past the row's end count as null.
    pub fn match_weight(&self, gammas: &[u8]) -> f64 {
        self.prior_weight()
            + self
                .comparisons
                .iter()
                .zip(gammas)
                .map(|(c, &g)| m_u(c, g).map_or(0.0, |(m, u)| (m / u).log2()))
                .sum::<f64>()
    }

    /// The probability that a pair with this gamma row is a match: 2^w / (1 + 2^w) for its
    /// [match weight](Model::match_weight) w.
    pub fn probability(&self, gammas: &[u8]) -> f64 {
        weight_to_probability(self.match_weight(gammas))
    }

    /// The match weight as records, Splink's waterfall: the prior first, then one part per
    /// comparison (its level code, m, u and log2 Bayes factor), then the total. The parts
    /// before the total add up to it. A null level has its code and no m or u; a gamma value
    /// out of range has neither code nor m nor u. Both weigh 0.
    pub fn explain(&self, gammas: &[u8]) -> Vec<WeightPart> {
        let prior = WeightPart {
            label: PRIOR_LABEL.to_owned(),
            level: None,
            m: None,
            u: None,
            log2_bayes_factor: self.prior_weight(),
        };
        let mut parts = vec![prior];
        for (c, &g) in self.comparisons.iter().zip(gammas) {
            let level = c.level_codes.get(usize::from(g)).cloned();
            let part = match m_u(c, g) {
                Some((m, u)) => WeightPart {
                    label: c.name.clone(),
                    level,
                    m: Some(m),
                    u: Some(u),
                    log2_bayes_factor: (m / u).log2(),
                },
                None => WeightPart {
                    label: c.name.clone(),
                    level,
                    m: None,
                    u: None,
                    log2_bayes_factor: 0.0,
                },
            };
            parts.push(part);
        }
        let total = parts.iter().map(|p| p.log2_bayes_factor).sum();
        parts.push(WeightPart {
            label: TOTAL_LABEL.to_owned(),
            level: None,
            m: None,
            u: None,
            log2_bayes_factor: total,
        });
        parts
    }
}

/// Label of the first [`WeightPart`] of an explanation, the prior.
pub const PRIOR_LABEL: &str = "prior";

/// Label of the last [`WeightPart`] of an explanation, the total match weight.
pub const TOTAL_LABEL: &str = "total";

/// One record of an explanation ([`Model::explain`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightPart {
    /// [`PRIOR_LABEL`], a comparison's name, or [`TOTAL_LABEL`].
    pub label: String,
    /// The level code the pair landed in (comparisons only).
    pub level: Option<String>,
    /// m of that level (comparisons at a non-null level only), clamped as used.
    pub m: Option<f64>,
    /// u of that level (comparisons at a non-null level only), clamped as used.
    pub u: Option<f64>,
    /// The weight this part adds, in bits: log2(m / u), the prior's log2 odds, or the total.
    pub log2_bayes_factor: f64,
}

/// m and u of a level as the weights use them (clamped to [`PROB_FLOOR`, 1]), or `None` for
/// the null level and invalid values.
fn m_u(c: &ComparisonParams, gamma: u8) -> Option<(f64, f64)> {
    let level = c.informative_level(gamma)?;
    let m = c.m.get(level)?;
    let u = c.u.get(level)?;
    Some((clamp_prob(*m, 1.0), clamp_prob(*u, 1.0)))
}

/// Clamps a probability to [`PROB_FLOOR`, `max`]; NaN becomes the floor.
fn clamp_prob(p: f64, max: f64) -> f64 {
    if p.is_nan() {
        PROB_FLOOR
    } else {
        p.clamp(PROB_FLOOR, max)
    }
}

/// Clamps lambda to [[`LAMBDA_FLOOR`], 1 - [`LAMBDA_FLOOR`]]; NaN becomes the default.
fn clamp_lambda(lambda: f64) -> f64 {
    if lambda.is_nan() {
        DEFAULT_LAMBDA
    } else {
        lambda.clamp(LAMBDA_FLOOR, 1.0 - LAMBDA_FLOOR)
    }
}

/// 2^w / (1 + 2^w), written so that it neither overflows nor loses precision.
fn weight_to_probability(w: f64) -> f64 {
    1.0 / (1.0 + (-w).exp2())
}

/// A gamma matrix: one row per pair, one level index per comparison, row-major and `width`
/// values wide. A trailing partial row is ignored, and so is everything when `width` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gammas<'a> {
    /// The level indices, row after row.
    pub values: &'a [u8],
    /// Values per row: the number of comparisons.
    pub width: usize,
}

impl<'a> Gammas<'a> {
    /// The rows, each `width` values long.
    pub fn rows(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let width = self.width.max(1);
        let values = if self.width == 0 {
            &[][..]
        } else {
            self.values
        };
        values.chunks_exact(width)
    }

    /// Number of complete rows.
    pub fn n_rows(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }
}

/// Sets u of every comparison (except those with `fixed_u`) from a sample of random pairs,
/// which are nearly all non-matches: u of a level is its share of the pairs where the
/// comparison is not null, with half a pair added to every level so none is 0 (then clamped
/// and renormalised). The null level keeps m = u = 1. A comparison that is null in every
/// random pair keeps its u.
pub fn estimate_u_from_random_pairs(model: &mut Model, random: &Gammas) {
    for (k, c) in model.comparisons.iter_mut().enumerate() {
        if !c.fixed_u
            && let Some(u) = level_frequencies(c, k, random)
        {
            c.u = u;
        }
    }
}

/// Sets m of the listed comparisons (except those with `fixed_m`) from pairs known to be
/// matches (a strong label, e.g. pairs that agree on a valid civil-registry NIK, used for the
/// *other* comparisons), the same way [`estimate_u_from_random_pairs`] sets u.
pub fn estimate_m_from_matches(model: &mut Model, matches: &Gammas, comparisons: &[usize]) {
    for (k, c) in model.comparisons.iter_mut().enumerate() {
        if comparisons.contains(&k)
            && !c.fixed_m
            && let Some(m) = level_frequencies(c, k, matches)
        {
            c.m = m;
        }
    }
}

/// Level shares of comparison `k` among `rows` where it is not null, with half a pair added to
/// every level so none is 0 (then clamped and renormalised; the null level stays 1). None when
/// the comparison is null in every row.
fn level_frequencies(c: &ComparisonParams, k: usize, rows: &Gammas) -> Option<Vec<f64>> {
    const SMOOTHING: f64 = 0.5;
    let mut counts = vec![0_u64; c.n_levels()];
    for row in rows.rows() {
        if let Some(level) = row.get(k).and_then(|&g| c.informative_level(g))
            && let Some(count) = counts.get_mut(level)
        {
            *count += 1;
        }
    }
    if counts.iter().all(|&n| n == 0) {
        return None;
    }
    let informative: Vec<usize> = c.informative_levels().collect();
    let mut values = vec![1.0; c.n_levels()];
    for &level in &informative {
        if let (Some(v), Some(&n)) = (values.get_mut(level), counts.get(level)) {
            *v = n as f64 + SMOOTHING;
        }
    }
    clamp_normalise(&mut values, &informative, c.null_level);
    Some(values)
}

/// Clamps the listed entries to [`PROB_FLOOR`, 1 - `PROB_FLOOR`] after scaling them to sum to
/// 1, then renormalises; the null level is set to 1.
fn clamp_normalise(values: &mut [f64], informative: &[usize], null_level: Option<usize>) {
    for _ in 0..2 {
        let sum: f64 = informative.iter().filter_map(|&l| values.get(l)).sum();
        for &l in informative {
            if let Some(v) = values.get_mut(l) {
                let scaled = if sum > 0.0 { *v / sum } else { 0.0 };
                *v = clamp_prob(scaled, 1.0 - PROB_FLOOR);
            }
        }
    }
    if let Some(v) = null_level.and_then(|l| values.get_mut(l)) {
        *v = 1.0;
    }
}

/// What [`estimate_em`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EmReport {
    /// EM iterations run (each an E-step and an M-step).
    pub iterations: usize,
    /// Whether the largest parameter change fell below the tolerance.
    pub converged: bool,
    /// Lambda at the end.
    pub lambda: f64,
    /// The largest absolute change of lambda, an m or a u in the last iteration.
    pub max_change: f64,
}

/// A distinct gamma row, its levels resolved per comparison, and how many pairs have it.
struct Pattern {
    levels: Vec<Option<usize>>,
    count: f64,
}

/// Counts the distinct gamma rows, in sorted order so that sums (and so results) do not depend
/// on hashing.
fn patterns(model: &Model, pairs: &Gammas) -> Vec<Pattern> {
    let mut counts: HashMap<&[u8], u64> = HashMap::new();
    for row in pairs.rows() {
        *counts.entry(row).or_insert(0) += 1;
    }
    let mut distinct: Vec<(&[u8], u64)> = counts.into_iter().collect();
    distinct.sort_unstable();
    distinct
        .into_iter()
        .map(|(row, count)| Pattern {
            levels: model
                .comparisons
                .iter()
                .enumerate()
                .map(|(k, c)| row.get(k).and_then(|&g| c.informative_level(g)))
                .collect(),
            count: count as f64,
        })
        .collect()
}

/// Estimates lambda and m (and u when `update_u`) by expectation-maximisation over candidate
/// pairs, starting from the model's current values, and writes them into the model.
///
/// - E-step: each pair's probability of being a match, p = lambda·Πm / (lambda·Πm +
///   (1 - lambda)·Πu) over its non-null levels, computed in log space.
/// - M-step: lambda = mean p; m of a level = Σ p over the pairs at that level / Σ p over the
///   pairs where the comparison is not null; u the same with 1 - p. m and u are clamped and
///   renormalised; `fixed_m` / `fixed_u` comparisons keep theirs.
///
/// Stops when no parameter moved by `tolerance` or more, or after `max_iterations`. Splink
/// keeps u from random sampling ([`estimate_u_from_random_pairs`]): pass `update_u = false`
/// unless there is no such sample. With no complete row, nothing changes (0 iterations, not
/// converged).
pub fn estimate_em(
    model: &mut Model,
    pairs: &Gammas,
    max_iterations: usize,
    tolerance: f64,
    update_u: bool,
) -> EmReport {
    let patterns = patterns(model, pairs);
    let total: f64 = patterns.iter().map(|p| p.count).sum();
    let mut report = EmReport {
        iterations: 0,
        converged: false,
        lambda: model.lambda,
        max_change: 0.0,
    };
    if total <= 0.0 {
        return report;
    }
    let informative: Vec<Vec<usize>> = model
        .comparisons
        .iter()
        .map(|c| c.informative_levels().collect())
        .collect();
    // Sums of p (for m) and of 1 - p (for u) per comparison and level.
    let mut m_sums: Vec<Vec<f64>> = model
        .comparisons
        .iter()
        .map(|c| vec![0.0; c.n_levels()])
        .collect();
    let mut u_sums = m_sums.clone();

    while report.iterations < max_iterations {
        report.iterations += 1;
        m_sums
            .iter_mut()
            .chain(u_sums.iter_mut())
            .for_each(|s| s.fill(0.0));

        // E-step, accumulating the M-step's sums on the way.
        let lambda = clamp_lambda(model.lambda);
        let (log_prior_m, log_prior_u) = (lambda.ln(), (1.0 - lambda).ln());
        let mut sum_p = 0.0;
        for pattern in &patterns {
            let (mut log_m, mut log_u) = (log_prior_m, log_prior_u);
            for (c, level) in model.comparisons.iter().zip(&pattern.levels) {
                if let Some((m, u)) = level.and_then(|l| Some((*c.m.get(l)?, *c.u.get(l)?))) {
                    log_m += clamp_prob(m, 1.0).ln();
                    log_u += clamp_prob(u, 1.0).ln();
                }
            }
            let p = 1.0 / (1.0 + (log_u - log_m).exp());
            sum_p += pattern.count * p;
            for ((level, ms), us) in pattern.levels.iter().zip(&mut m_sums).zip(&mut u_sums) {
                if let Some(l) = *level
                    && let (Some(ms), Some(us)) = (ms.get_mut(l), us.get_mut(l))
                {
                    *ms += pattern.count * p;
                    *us += pattern.count * (1.0 - p);
                }
            }
        }

        // M-step.
        let new_lambda = clamp_lambda(sum_p / total);
        let mut max_change = (new_lambda - model.lambda).abs();
        model.lambda = new_lambda;
        for ((c, levels), (ms, us)) in model
            .comparisons
            .iter_mut()
            .zip(&informative)
            .zip(m_sums.iter().zip(&u_sums))
        {
            let null_level = c.null_level;
            if !c.fixed_m {
                max_change = max_change.max(update(&mut c.m, ms, levels, null_level));
            }
            if update_u && !c.fixed_u {
                max_change = max_change.max(update(&mut c.u, us, levels, null_level));
            }
        }
        report.max_change = max_change;
        if max_change < tolerance {
            report.converged = true;
            break;
        }
    }
    report.lambda = model.lambda;
    report
}

/// Replaces `values` by `sums` normalised over the non-null `levels` (clamped), unless no pair
/// contributed; returns the largest absolute change.
fn update(values: &mut [f64], sums: &[f64], levels: &[usize], null_level: Option<usize>) -> f64 {
    let denominator: f64 = levels.iter().filter_map(|&l| sums.get(l)).sum();
    if denominator <= 0.0 {
        return 0.0;
    }
    let old = values.to_vec();
    for &l in levels {
        if let (Some(v), Some(&s)) = (values.get_mut(l), sums.get(l)) {
            *v = s;
        }
    }
    clamp_normalise(values, levels, null_level);
    levels
        .iter()
        .filter_map(|&l| Some((values.get(l)? - old.get(l)?).abs()))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: a tiny deterministic generator, enough to simulate pairs.
    struct SplitMix(u64);

    impl SplitMix {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
        }

        /// An index drawn with the given probabilities (which sum to 1).
        fn categorical(&mut self, probs: &[f64]) -> u8 {
            let x = self.uniform();
            let mut acc = 0.0;
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if x < acc {
                    return u8::try_from(i).expect("few levels");
                }
            }
            u8::try_from(probs.len() - 1).expect("few levels")
        }
    }

    /// A known truth: per comparison, level codes, null level, how often it is null, m and u
    /// over the non-null levels (which come first).
    struct Truth {
        lambda: f64,
        comparisons: Vec<TrueComparison>,
    }

    struct TrueComparison {
        codes: &'static [&'static str],
        null_level: Option<usize>,
        null_rate: f64,
        m: &'static [f64],
        u: &'static [f64],
    }

    fn truth() -> Truth {
        Truth {
            lambda: 0.1,
            comparisons: vec![
                TrueComparison {
                    codes: &["exact", "one_substitution", "different", "missing"],
                    null_level: Some(3),
                    null_rate: 0.05,
                    m: &[0.85, 0.10, 0.05],
                    u: &[0.002, 0.018, 0.98],
                },
                TrueComparison {
                    codes: &["exact", "jaro_winkler_high", "token_set", "different"],
                    null_level: None,
                    null_rate: 0.0,
                    m: &[0.70, 0.15, 0.10, 0.05],
                    u: &[0.01, 0.03, 0.06, 0.90],
                },
                TrueComparison {
                    codes: &["exact", "one_component_off", "different", "missing"],
                    null_level: Some(3),
                    null_rate: 0.10,
                    m: &[0.80, 0.15, 0.05],
                    u: &[0.01, 0.09, 0.90],
                },
            ],
        }
    }

    fn untrained(truth: &Truth) -> Model {
        Model::new(
            truth
                .comparisons
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let codes = c.codes.iter().map(|s| (*s).to_owned()).collect();
                    (format!("c{k}"), codes, c.null_level)
                })
                .collect(),
        )
    }

    /// `n` gamma rows: each a match with probability `lambda`, its levels drawn from m or u,
    /// or null at the comparison's null rate.
    fn simulate(truth: &Truth, lambda: f64, n: usize, seed: u64) -> Vec<u8> {
        let mut rng = SplitMix(seed);
        let mut values = Vec::with_capacity(n * truth.comparisons.len());
        for _ in 0..n {
            let is_match = rng.uniform() < lambda;
            for c in &truth.comparisons {
                let null = c.null_level.filter(|_| rng.uniform() < c.null_rate);
                let gamma = match null {
                    Some(l) => u8::try_from(l).expect("few levels"),
                    None => rng.categorical(if is_match { c.m } else { c.u }),
                };
                values.push(gamma);
            }
        }
        values
    }

    #[test]
    fn em_recovers_known_parameters() {
        let truth = truth();
        let width = truth.comparisons.len();
        let mut model = untrained(&truth);

        let random = simulate(&truth, 0.0, 200_000, 1);
        estimate_u_from_random_pairs(
            &mut model,
            &Gammas {
                values: &random,
                width,
            },
        );
        for (c, t) in model.comparisons.iter().zip(&truth.comparisons) {
            for (l, want) in t.u.iter().enumerate() {
                let got = c.u[l];
                assert!(
                    (got - want).abs() < 0.005,
                    "{} u[{l}] = {got}, want {want}",
                    c.name
                );
            }
        }

        let pairs = simulate(&truth, truth.lambda, 200_000, 2);
        let before = model.clone();
        let report = estimate_em(
            &mut model,
            &Gammas {
                values: &pairs,
                width,
            },
            500,
            1e-7,
            false,
        );
        assert!(report.converged, "{report:?}");
        assert!(report.iterations > 1, "{report:?}");
        assert_eq!(report.lambda, model.lambda);
        assert!(
            (model.lambda - truth.lambda).abs() < 0.01,
            "lambda {} want {}",
            model.lambda,
            truth.lambda
        );
        for (c, t) in model.comparisons.iter().zip(&truth.comparisons) {
            for (l, want) in t.m.iter().enumerate() {
                let got = c.m[l];
                assert!(
                    (got - want).abs() < 0.02,
                    "{} m[{l}] = {got}, want {want}",
                    c.name
                );
            }
            if let Some(null) = t.null_level {
                assert_eq!((c.m[null], c.u[null]), (1.0, 1.0), "{}", c.name);
            }
        }
        // update_u = false: u is the random-sample estimate, untouched.
        for (c, b) in model.comparisons.iter().zip(&before.comparisons) {
            assert_eq!(c.u, b.u, "{}", c.name);
        }
    }

    #[test]
    fn em_can_learn_u_too() {
        let truth = truth();
        let width = truth.comparisons.len();
        let mut model = untrained(&truth);
        let pairs = simulate(&truth, truth.lambda, 200_000, 3);
        let report = estimate_em(
            &mut model,
            &Gammas {
                values: &pairs,
                width,
            },
            1000,
            1e-7,
            true,
        );
        assert!(report.converged, "{report:?}");
        assert!(
            (model.lambda - truth.lambda).abs() < 0.01,
            "lambda {}",
            model.lambda
        );
        for (c, t) in model.comparisons.iter().zip(&truth.comparisons) {
            for (l, (m, u)) in t.m.iter().zip(t.u).enumerate() {
                assert!(
                    (c.m[l] - m).abs() < 0.02,
                    "{} m[{l}] = {}, want {m}",
                    c.name,
                    c.m[l]
                );
                assert!(
                    (c.u[l] - u).abs() < 0.02,
                    "{} u[{l}] = {}, want {u}",
                    c.name,
                    c.u[l]
                );
            }
        }
    }

    #[test]
    fn em_is_reproducible_and_order_free() {
        let truth = truth();
        let width = truth.comparisons.len();
        let pairs = simulate(&truth, truth.lambda, 20_000, 4);
        let mut reversed: Vec<u8> = pairs.chunks_exact(width).rev().flatten().copied().collect();
        reversed.extend_from_slice(&[0, 0]); // a trailing partial row is ignored
        let run = |values: &[u8]| {
            let mut model = untrained(&truth);
            estimate_em(&mut model, &Gammas { values, width }, 50, 1e-9, false);
            model
        };
        assert_eq!(run(&pairs), run(&reversed));
    }

    /// lambda 0.2 (prior weight -2); `a`: m 0.8/0.2, u 0.1/0.9; `b`: three levels and a null.
    fn small_model() -> Model {
        let mut model = Model::new(vec![
            (
                "a".to_owned(),
                vec!["exact".to_owned(), "different".to_owned()],
                None,
            ),
            (
                "b".to_owned(),
                ["exact", "close", "different", "missing"]
                    .map(str::to_owned)
                    .to_vec(),
                Some(3),
            ),
        ]);
        model.lambda = 0.2;
        model.comparisons[0].m = vec![0.8, 0.2];
        model.comparisons[0].u = vec![0.1, 0.9];
        model.comparisons[1].m = vec![0.6, 0.3, 0.1, 1.0];
        model.comparisons[1].u = vec![0.05, 0.15, 0.8, 1.0];
        model
    }

    #[test]
    fn match_weight_by_hand() {
        let model = small_model();
        // log2(0.2/0.8) = -2; log2(0.8/0.1) = 3; log2(0.3/0.15) = 1.
        assert!((model.match_weight(&[0, 1]) - 2.0).abs() < 1e-12);
        assert!((model.probability(&[0, 1]) - 0.8).abs() < 1e-12);
        // -2 + log2(0.2/0.9) + log2(0.1/0.8) = -2 + (1 - log2 9) - 3.
        let want = -2.0 + 1.0 - 9_f64.log2() - 3.0;
        assert!((model.match_weight(&[1, 2]) - want).abs() < 1e-12);
        assert!((want + 7.169_925_001_442_312).abs() < 1e-12);
        // -2 + 3 + log2(12).
        assert!((model.match_weight(&[0, 0]) - (1.0 + 12_f64.log2())).abs() < 1e-12);
        assert!((model.bayes_factor(1, 0) - 12.0).abs() < 1e-12);
        assert!((model.bayes_factor(0, 1) - 2.0 / 9.0).abs() < 1e-12);
        // Probability 0.5 at weight 0; extreme weights stay in [0, 1].
        let mut even = model.clone();
        even.lambda = 0.5;
        even.comparisons[0].m = vec![0.5, 0.5];
        even.comparisons[0].u = vec![0.5, 0.5];
        assert!((even.probability(&[1]) - 0.5).abs() < 1e-12);
        assert_eq!(weight_to_probability(5000.0), 1.0);
        assert_eq!(weight_to_probability(-5000.0), 0.0);
    }

    #[test]
    fn null_level_weighs_nothing() {
        let mut model = small_model();
        // m and u of the null level are ignored, whatever they say.
        model.comparisons[1].m[3] = 0.5;
        model.comparisons[1].u[3] = 0.01;
        assert_eq!(model.bayes_factor(1, 3), 1.0);
        assert!((model.match_weight(&[0, 3]) - 1.0).abs() < 1e-12);
        assert_eq!(model.match_weight(&[0, 3]), model.match_weight(&[0]));
        // Out of range: no such level, comparison or value.
        assert_eq!(model.bayes_factor(1, 9), 1.0);
        assert_eq!(model.bayes_factor(7, 0), 1.0);
        assert_eq!(model.match_weight(&[0, 9]), model.match_weight(&[0]));
        assert_eq!(model.match_weight(&[0, 3, 0, 0]), model.match_weight(&[0]));
        // Zeros in a hand-edited model stay finite.
        model.comparisons[0].u[0] = 0.0;
        assert!(model.match_weight(&[0, 0]).is_finite());
        model.lambda = 0.0;
        assert!(model.match_weight(&[0, 0]).is_finite());
    }

    #[test]
    fn explain_parts_add_up() {
        let model = small_model();
        for gammas in [[0_u8, 1], [1, 2], [0, 3], [1, 0]] {
            let parts = model.explain(&gammas);
            assert_eq!(parts.len(), 4);
            let (first, last) = (&parts[0], &parts[3]);
            assert_eq!(first.label, PRIOR_LABEL);
            assert!((first.log2_bayes_factor + 2.0).abs() < 1e-12);
            assert_eq!(last.label, TOTAL_LABEL);
            let sum: f64 = parts[..3].iter().map(|p| p.log2_bayes_factor).sum();
            assert!(
                (sum - model.match_weight(&gammas)).abs() < 1e-12,
                "{gammas:?}"
            );
            assert!((last.log2_bayes_factor - model.match_weight(&gammas)).abs() < 1e-12);
        }
        let parts = model.explain(&[1, 3]);
        assert_eq!(parts[1].label, "a");
        assert_eq!(parts[1].level.as_deref(), Some("different"));
        assert_eq!((parts[1].m, parts[1].u), (Some(0.2), Some(0.9)));
        assert_eq!(parts[2].label, "b");
        assert_eq!(parts[2].level.as_deref(), Some("missing"));
        assert_eq!(
            (parts[2].m, parts[2].u, parts[2].log2_bayes_factor),
            (None, None, 0.0)
        );
    }

    #[test]
    fn fixed_parameters_stay_fixed() {
        let truth = truth();
        let width = truth.comparisons.len();
        let mut model = untrained(&truth);
        model.comparisons[0].fixed_m = true;
        model.comparisons[0].m = vec![0.5, 0.3, 0.2, 1.0];
        model.comparisons[1].fixed_u = true;
        let before = model.clone();
        let pairs = simulate(&truth, truth.lambda, 20_000, 5);
        let random = simulate(&truth, 0.0, 20_000, 6);
        estimate_u_from_random_pairs(
            &mut model,
            &Gammas {
                values: &random,
                width,
            },
        );
        estimate_em(
            &mut model,
            &Gammas {
                values: &pairs,
                width,
            },
            100,
            1e-7,
            true,
        );
        assert_eq!(model.comparisons[0].m, before.comparisons[0].m);
        assert_eq!(model.comparisons[1].u, before.comparisons[1].u);
        // The free parameters did move.
        assert_ne!(model.comparisons[0].u, before.comparisons[0].u);
        assert_ne!(model.comparisons[1].m, before.comparisons[1].m);
        assert_ne!(model.lambda, before.lambda);
    }

    #[test]
    fn u_from_random_pairs_counts_and_smooths() {
        let mut model = small_model();
        // Comparison b: 3 exact, 1 close, 0 different, 4 missing; a: always level 1.
        let rows: [[u8; 2]; 8] = [
            [1, 0],
            [1, 0],
            [1, 0],
            [1, 1],
            [1, 3],
            [1, 3],
            [1, 3],
            [1, 3],
        ];
        let values: Vec<u8> = rows.iter().flatten().copied().collect();
        estimate_u_from_random_pairs(
            &mut model,
            &Gammas {
                values: &values,
                width: 2,
            },
        );
        // (count + 0.5) / (4 + 1.5): the null level is not counted.
        let b = &model.comparisons[1].u;
        for (got, want) in b.iter().zip([3.5 / 5.5, 1.5 / 5.5, 0.5 / 5.5, 1.0]) {
            assert!((got - want).abs() < 1e-12, "{b:?}");
        }
        let a = &model.comparisons[0].u;
        assert!(
            (a[0] - 0.5 / 9.0).abs() < 1e-12 && (a[1] - 8.5 / 9.0).abs() < 1e-12,
            "{a:?}"
        );
        // Nothing to count: u is kept; width 0 has no rows.
        let kept = model.clone();
        estimate_u_from_random_pairs(
            &mut model,
            &Gammas {
                values: &[3, 3],
                width: 0,
            },
        );
        assert_eq!(model, kept);
        let report = estimate_em(
            &mut model,
            &Gammas {
                values: &[],
                width: 2,
            },
            10,
            1e-6,
            false,
        );
        assert_eq!((report.iterations, report.converged), (0, false));
        assert_eq!(model, kept);
    }

    #[test]
    fn defaults_favour_strong_levels() {
        let model = untrained(&truth());
        assert_eq!(model.lambda, DEFAULT_LAMBDA);
        for c in &model.comparisons {
            let levels: Vec<usize> = c.informative_levels().collect();
            let m_sum: f64 = levels.iter().map(|&l| c.m[l]).sum();
            let u_sum: f64 = levels.iter().map(|&l| c.u[l]).sum();
            assert!(
                (m_sum - 1.0).abs() < 1e-12 && (u_sum - 1.0).abs() < 1e-12,
                "{c:?}"
            );
            assert_eq!(c.m[0], DEFAULT_TOP);
            assert!(levels.windows(2).all(|w| c.m[w[0]] > c.m[w[1]]), "{c:?}");
            assert!(levels.windows(2).all(|w| c.u[w[0]] < c.u[w[1]]), "{c:?}");
            assert_eq!(levels.last().map(|&l| c.u[l]), Some(DEFAULT_TOP));
        }
        // A null level past the end is dropped; one informative level gets m = u = 1.
        let odd = Model::new(vec![("x".to_owned(), vec!["exact".to_owned()], Some(5))]);
        assert_eq!(odd.comparisons[0].null_level, None);
        assert_eq!(
            (odd.comparisons[0].m.clone(), odd.comparisons[0].u.clone()),
            (vec![1.0], vec![1.0])
        );
    }

    #[test]
    fn level_spec_from_level_enum() {
        use crate::link::compare::DateLevel;
        let (name, codes, null_level) = level_spec::<DateLevel>("birth_date");
        assert_eq!(name, "birth_date");
        assert_eq!(codes.first().map(String::as_str), Some("exact"));
        assert_eq!(null_level, Some(codes.len() - 1));
        assert_eq!(codes.last().map(String::as_str), Some("missing"));
    }

    #[test]
    fn serde_round_trip() {
        let mut model = small_model();
        model.comparisons[1].fixed_u = true;
        let json = serde_json::to_string_pretty(&model).expect("a model serialises");
        let back: Model = serde_json::from_str(&json).expect("and parses back");
        assert_eq!(back, model);
        assert!(json.contains("\"null_level\": 3"), "{json}");
        assert!(json.contains("\"level_codes\""), "{json}");
    }
}
