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

/// The seed used when the caller has none: the same inputs give the same interval everywhere.
pub const SEED: u64 = 0x5EED_0FC0_FFEE;

/// How a bootstrap is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// Coverage of the interval, e.g. 0.95.
    pub level: f64,
    /// Resamples drawn (at least 1).
    pub resamples: usize,
    /// Seed of the draws. Resample `r` draws from a stream of its own, seeded by `seed` and
    /// `r`, so the result does not depend on how the resamples are split over threads.
    pub seed: u64,
    /// Threads to draw on; 0 picks by the amount of work (up to the cores there are, at most 4).
    pub threads: usize,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { level: 0.95, resamples: RESAMPLES, seed: SEED, threads: 0 }
    }
}

/// wyrand: one multiply per 64 bits, seeded per resample through splitmix64.
struct Rng(u64);

impl Rng {
    fn for_resample(seed: u64, r: usize) -> Self {
        let mut z = seed ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng(z ^ (z >> 31))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xE703_7ED1_A0B4_28DB);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Fills `idx` with uniform indices below `n`: two per draw, each from 32 random bits by
    /// Lemire's multiply-shift (no division; the bias, under n / 2^32, is far below what a
    /// bootstrap can see).
    fn indices(&mut self, n: u32, idx: &mut [u32]) {
        let n = u64::from(n);
        let mut pairs = idx.chunks_exact_mut(2);
        for p in &mut pairs {
            let x = self.next();
            p[0] = (((x & 0xFFFF_FFFF) * n) >> 32) as u32;
            p[1] = (((x >> 32) * n) >> 32) as u32;
        }
        for last in pairs.into_remainder() {
            *last = (((self.next() & 0xFFFF_FFFF) * n) >> 32) as u32;
        }
    }
}

/// Below this many additions (examples × resamples × metric groups) one thread is quicker
/// than starting more.
const PARALLEL_WORK: usize = 1 << 22;

/// Bootstrap intervals of the means of several metrics' paired differences over the same
/// examples: `columns[k][i]` is metric `k`'s difference (candidate minus baseline) on example
/// `i`. Every resample draws its examples once and sums every column over them, so the
/// intervals are joint draws. `None` when there are no examples; the columns must be of equal
/// length (at most 2^32 - 1).
pub fn bootstrap_means(columns: &[&[f64]], opts: &Bootstrap) -> Option<Vec<Delta>> {
    let n = columns.first()?.len();
    if n == 0 || columns.iter().any(|c| c.len() != n) || u32::try_from(n).is_err() {
        return None;
    }
    let resamples = opts.resamples.max(1);
    // Metrics in groups of up to four, each group's rows interleaved so that one drawn index
    // reads one cache line; a group of three is padded to four.
    let groups: Vec<Group> = columns.chunks(4).map(Group::of).collect();
    let width: usize = groups.iter().map(Group::width).sum();
    let threads = match opts.threads {
        0 if n * resamples * groups.len() < PARALLEL_WORK => 1,
        0 => std::thread::available_parallelism().map_or(1, |c| c.get()).min(4),
        t => t,
    }
    .min(resamples);
    // sums[r * width + j]: resample r's sum of column j (padding included).
    let mut sums = vec![0.0; resamples * width];
    let per = resamples.div_ceil(threads);
    let work = |first: usize, out: &mut [f64]| {
        // One group (up to four metrics): draw and add in one pass. More: draw the indices
        // once into a buffer, then add each group's rows. Both give the same sums.
        let mut idx = vec![0u32; if groups.len() > 1 { n } else { 0 }];
        for (k, row) in out.chunks_exact_mut(width).enumerate() {
            let mut rng = Rng::for_resample(opts.seed, first + k);
            if let [g] = groups.as_slice() {
                g.draw_sum(&mut rng, row);
                continue;
            }
            rng.indices(n as u32, &mut idx);
            let mut at = 0;
            for g in &groups {
                g.sum(&idx, &mut row[at..at + g.width()]);
                at += g.width();
            }
        }
    };
    if threads == 1 {
        work(0, &mut sums);
    } else {
        std::thread::scope(|s| {
            for (t, out) in sums.chunks_mut(per * width).enumerate() {
                let work = &work;
                s.spawn(move || work(t * per, out));
            }
        });
    }
    let tail = (1.0 - opts.level.clamp(0.0, 1.0)) / 2.0;
    let rank = |q: f64| ((q * (resamples - 1) as f64).round() as usize).min(resamples - 1);
    let (lo, hi) = (rank(tail), rank(1.0 - tail));
    let mut means = vec![0.0; resamples];
    let mut out = Vec::with_capacity(columns.len());
    let mut at = 0;
    for g in &groups {
        for (j, col) in g.columns.iter().enumerate() {
            for (m, row) in means.iter_mut().zip(sums.chunks_exact(width)) {
                *m = row[at + j] / n as f64;
            }
            let (_, &mut low, upper) = means.select_nth_unstable_by(lo, f64::total_cmp);
            let high =
                if hi == lo { low } else { *upper.select_nth_unstable_by(hi - lo - 1, f64::total_cmp).1 };
            let mean = col.iter().sum::<f64>() / n as f64;
            out.push(Delta { mean, low, high, n });
        }
        at += g.width();
    }
    Some(out)
}

/// Up to four columns, interleaved by example.
struct Group<'a> {
    columns: &'a [&'a [f64]],
    rows: Rows,
}

enum Rows {
    One(Vec<[f64; 1]>),
    Two(Vec<[f64; 2]>),
    Four(Vec<[f64; 4]>),
}

impl<'a> Group<'a> {
    fn of(columns: &'a [&'a [f64]]) -> Self {
        fn rows<const W: usize>(columns: &[&[f64]]) -> Vec<[f64; W]> {
            (0..columns[0].len())
                .map(|i| std::array::from_fn(|j| columns.get(j).map_or(0.0, |c| c[i])))
                .collect()
        }
        let rows = match columns.len() {
            1 => Rows::One(rows(columns)),
            2 => Rows::Two(rows(columns)),
            _ => Rows::Four(rows(columns)),
        };
        Group { columns, rows }
    }

    fn width(&self) -> usize {
        match self.rows {
            Rows::One(_) => 1,
            Rows::Two(_) => 2,
            Rows::Four(_) => 4,
        }
    }

    fn sum(&self, idx: &[u32], out: &mut [f64]) {
        match &self.rows {
            Rows::One(r) => out.copy_from_slice(&gather(r, idx)),
            Rows::Two(r) => out.copy_from_slice(&gather(r, idx)),
            Rows::Four(r) => out.copy_from_slice(&gather(r, idx)),
        }
    }

    fn draw_sum(&self, rng: &mut Rng, out: &mut [f64]) {
        match &self.rows {
            Rows::One(r) => out.copy_from_slice(&draw_gather(r, rng)),
            Rows::Two(r) => out.copy_from_slice(&draw_gather(r, rng)),
            Rows::Four(r) => out.copy_from_slice(&draw_gather(r, rng)),
        }
    }
}

/// [`gather`] over the indices [`Rng::indices`] would draw, without storing them: the same
/// indices, added in the same order.
fn draw_gather<const W: usize>(rows: &[[f64; W]], rng: &mut Rng) -> [f64; W] {
    let n = rows.len() as u64;
    let at = |bits: u64| ((bits & 0xFFFF_FFFF) * n) >> 32;
    let mut acc = [[0.0; W]; 4];
    let mut add = |a: usize, i: u64| {
        let r = &rows[i as usize];
        for w in 0..W {
            acc[a][w] += r[w];
        }
    };
    for _ in 0..rows.len() / 4 {
        let (x, y) = (rng.next(), rng.next());
        add(0, at(x));
        add(1, at(x >> 32));
        add(2, at(y));
        add(3, at(y >> 32));
    }
    let rest = rows.len() % 4;
    if rest >= 2 {
        let x = rng.next();
        add(0, at(x));
        add(0, at(x >> 32));
    }
    if rest % 2 == 1 {
        add(0, at(rng.next()));
    }
    std::array::from_fn(|w| (acc[0][w] + acc[1][w]) + (acc[2][w] + acc[3][w]))
}

/// The sums of the rows at `idx`, four rows at a time into four accumulators, so that the
/// additions do not wait on each other.
fn gather<const W: usize>(rows: &[[f64; W]], idx: &[u32]) -> [f64; W] {
    let mut acc = [[0.0; W]; 4];
    let mut quads = idx.chunks_exact(4);
    for q in &mut quads {
        for (a, &i) in acc.iter_mut().zip(q) {
            let r = &rows[i as usize];
            for w in 0..W {
                a[w] += r[w];
            }
        }
    }
    for &i in quads.remainder() {
        let r = &rows[i as usize];
        for w in 0..W {
            acc[0][w] += r[w];
        }
    }
    std::array::from_fn(|w| (acc[0][w] + acc[1][w]) + (acc[2][w] + acc[3][w]))
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
    let diffs: Vec<f64> = baseline.iter().zip(candidate).map(|(b, c)| c - b).collect();
    let opts = Bootstrap { level, resamples, seed, threads: 0 };
    bootstrap_means(&[&diffs], &opts)?.pop()
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
    fn metrics_resampled_together_match_each_alone_on_any_number_of_threads() {
        let opts = Bootstrap { resamples: 199, seed: 3, threads: 1, ..Bootstrap::default() };
        // Every remainder of the examples by four: the fused pass (one group) and the buffered
        // one (two groups) must draw and add alike.
        for n in [1_000, 1_001, 1_002, 1_003] {
            let cols: Vec<Vec<f64>> = (0..6)
                .map(|k| (0..n).map(|i| ((i * (k + 3) * 7919) % 101) as f64 / 50.0 - 1.0).collect())
                .collect();
            let refs: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
            let together = bootstrap_means(&refs, &opts).unwrap();
            for threads in [2, 3, 4] {
                assert_eq!(bootstrap_means(&refs, &Bootstrap { threads, ..opts }).unwrap(), together);
            }
            for (k, col) in refs.iter().enumerate() {
                assert_eq!(bootstrap_means(&[col], &opts).unwrap(), vec![together[k]]);
            }
            assert_eq!(bootstrap_means(&refs[..3], &opts).unwrap(), together[..3]);
            assert_ne!(bootstrap_means(&refs, &Bootstrap { seed: 4, ..opts }).unwrap(), together);
        }
        // Unequal columns and no examples give nothing.
        assert_eq!(bootstrap_means(&[&[1.0], &[1.0, 2.0]], &opts), None);
        assert_eq!(bootstrap_means(&[&[]], &opts), None);
        assert_eq!(bootstrap_means(&[], &opts), None);
    }

    #[test]
    fn indices_are_uniform() {
        let mut counts = [0u32; 7];
        let mut idx = vec![0u32; 70_001];
        Rng::for_resample(1, 0).indices(7, &mut idx);
        for &i in &idx {
            counts[i as usize] += 1;
        }
        // Each count is Binomial(70001, 1/7): mean 10000, sd about 93.
        assert!(counts.iter().all(|&c| c.abs_diff(10_000) < 500), "{counts:?}");
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
