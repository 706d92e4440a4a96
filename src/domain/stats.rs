//! Statistics for comparing evaluation runs on the examples they share: the mean difference of
//! a metric with a 95% confidence interval from a paired bootstrap, and, for boolean scorers,
//! the exact McNemar test on the examples where the two runs disagree.
//!
//! Everything here is deterministic: the bootstrap draws from a seeded generator, so the same
//! inputs always give the same interval.

/// A mean difference (candidate minus baseline) with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delta {
    /// Mean of the paired differences.
    pub mean: f64,
    /// Lower bound of the interval.
    pub low: f64,
    /// Upper bound of the interval.
    pub high: f64,
    /// Examples the difference is over.
    pub n: usize,
}

/// Resamples drawn by default.
pub const RESAMPLES: usize = 10_000;

/// xorshift64*: a small, fast, seeded generator; good enough for resampling.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform index below `n` (Lemire's multiply-shift; `n` > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// The mean of `candidate[i] - baseline[i]` over paired examples, with the percentile interval
/// of `level` (e.g. 0.95) from `resamples` bootstrap resamples of the examples. `None` when
/// there are no pairs. The two slices are paired by position and must be of equal length.
pub fn paired_bootstrap(
    baseline: &[f64],
    candidate: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Delta> {
    let n = baseline.len().min(candidate.len());
    if n == 0 {
        return None;
    }
    let diffs: Vec<f64> = baseline.iter().zip(candidate).map(|(b, c)| c - b).collect();
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let resamples = resamples.max(1);
    let mut rng = Rng::new(seed);
    let mut means: Vec<f64> =
        (0..resamples).map(|_| (0..n).map(|_| diffs[rng.below(n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    let at = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Some(Delta { mean, low: at(tail), high: at(1.0 - tail), n })
}

/// The exact two-sided McNemar p-value for paired boolean outcomes: `b` examples where only
/// the baseline passed, `c` where only the candidate passed. Under the null hypothesis each
/// disagreement goes either way with probability 1/2, so this is the two-sided binomial test
/// of `min(b, c)` out of `b + c`. 1 when there is no disagreement.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so large n does not overflow.
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose - ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// Counts of paired boolean outcomes: (only baseline passed, only candidate passed).
pub fn discordant(baseline: &[bool], candidate: &[bool]) -> (u64, u64) {
    baseline.iter().zip(candidate).fold((0, 0), |(b, c), (&x, &y)| match (x, y) {
        (true, false) => (b + 1, c),
        (false, true) => (b, c + 1),
        _ => (b, c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn mcnemar_matches_the_exact_binomial_table() {
        // Two-sided exact binomial probabilities at p = 1/2, as published tables give them.
        assert!(close(mcnemar_exact(1, 5), 0.21875, 1e-12)); // 2 * 7/64
        assert!(close(mcnemar_exact(5, 1), 0.21875, 1e-12));
        assert!(close(mcnemar_exact(0, 10), 0.001953125, 1e-12)); // 2 / 1024
        assert!(close(mcnemar_exact(2, 8), 0.109375, 1e-12)); // 2 * 56/1024
        assert!(close(mcnemar_exact(3, 3), 1.0, 1e-12));
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Larger counts, against the sums done in exact rational arithmetic: the log-space sum
        // neither overflows nor loses the small tail.
        let p = mcnemar_exact(400, 600);
        assert!(close(p / 2.728_464_156_066_018_4e-10, 1.0, 1e-9), "{p}");
        assert!(close(mcnemar_exact(45, 62), 0.121_512_421_876_244_1, 1e-12));
    }

    #[test]
    fn discordant_pairs_are_counted_each_way() {
        let base = [true, true, false, false, true];
        let cand = [true, false, true, true, false];
        assert_eq!(discordant(&base, &cand), (2, 2));
    }

    #[test]
    fn the_bootstrap_interval_matches_the_normal_closed_form_on_a_large_sample() {
        // 10,000 paired differences with mean 0.1 and a known spread: the interval of the mean
        // is mean ± 1.96 · sd / sqrt(n) by the central limit theorem.
        let n = 10_000;
        let baseline: Vec<f64> = (0..n).map(|i| (i % 7) as f64 / 7.0).collect();
        let candidate: Vec<f64> =
            baseline.iter().enumerate().map(|(i, b)| b + 0.1 + ((i * 37 % 11) as f64 - 5.0) / 10.0).collect();
        let d = paired_bootstrap(&baseline, &candidate, 0.95, 2_000, 42).unwrap();
        let diffs: Vec<f64> = baseline.iter().zip(&candidate).map(|(b, c)| c - b).collect();
        let mean = diffs.iter().sum::<f64>() / n as f64;
        let var = diffs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let half = 1.96 * var.sqrt() / (n as f64).sqrt();
        assert!(close(d.mean, mean, 1e-12));
        assert!(close(d.low, mean - half, half * 0.1), "{} vs {}", d.low, mean - half);
        assert!(close(d.high, mean + half, half * 0.1), "{} vs {}", d.high, mean + half);
        assert_eq!(d.n, n);
    }

    #[test]
    fn the_bootstrap_is_deterministic_and_handles_edges() {
        let a = [1.0, 0.0, 1.0, 1.0];
        let b = [1.0, 1.0, 1.0, 0.0];
        assert_eq!(paired_bootstrap(&a, &b, 0.95, 500, 7), paired_bootstrap(&a, &b, 0.95, 500, 7));
        assert_eq!(paired_bootstrap(&[], &[], 0.95, 500, 7), None);
        let same = paired_bootstrap(&a, &a, 0.95, 500, 7).unwrap();
        assert_eq!((same.mean, same.low, same.high), (0.0, 0.0, 0.0));
    }
}
