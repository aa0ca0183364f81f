//! Statistics across runs: mean, median, range, a 95 % confidence interval of the mean, and
//! the ratio of two backends' means with a bootstrap interval.
//!
//! - The interval of a mean is Student's t interval, `mean ± t(0.975, n−1) · sd / √n`, with
//!   the sample standard deviation (n − 1 in the denominator).
//! - The interval of a ratio `mean(B) / mean(A)` is a percentile bootstrap: each backend's
//!   runs are resampled with replacement, independently, [`BOOTSTRAP_RESAMPLES`] times, with a
//!   fixed-seed generator (SplitMix64), so the same inputs always give the same interval.
//! - Fewer than [`MIN_RUNS_FOR_INTERVAL`] runs give no interval: the figures say so instead
//!   of printing an interval too wide (or too unstable) to mean anything.

use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

/// Fewest runs (per backend) for which an interval is given.
pub const MIN_RUNS_FOR_INTERVAL: usize = 3;
/// Bootstrap resamples for ratio intervals.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// The default bootstrap seed.
pub const DEFAULT_SEED: u64 = 0x5EED_2026;

/// Summary of one figure over several runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation; `None` for a single run.
    pub sd: Option<f64>,
    /// 95 % interval of the mean; `None` with fewer than [`MIN_RUNS_FOR_INTERVAL`] runs.
    pub ci95: Option<[f64; 2]>,
    /// Why there is no interval, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Summarises values (at least one).
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if !n.is_multiple_of(2) {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let sd = (n >= 2).then(|| {
        let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        (ss / (n as f64 - 1.0)).sqrt()
    });
    let (ci95, note) = match sd {
        Some(sd) if n >= MIN_RUNS_FOR_INTERVAL => {
            let half = t_975(n - 1) * sd / (n as f64).sqrt();
            (Some([mean - half, mean + half]), None)
        }
        _ => (
            None,
            Some(format!(
                "{n} run{}: at least {MIN_RUNS_FOR_INTERVAL} are needed for an interval",
                if n == 1 { "" } else { "s" }
            )),
        ),
    };
    Some(Summary {
        n,
        mean,
        median,
        min: sorted[0],
        max: sorted[n - 1],
        sd,
        ci95,
        note,
    })
}

/// The 0.975 quantile of Student's t distribution with `df` degrees of freedom.
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        // Beyond the table: the Cornish-Fisher expansion around the normal quantile, good to
        // the third decimal from df = 30 on.
        _ => {
            let z: f64 = 1.959_964;
            let d = df as f64;
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

/// `mean(numerator) / mean(denominator)` and its bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub ratio: f64,
    pub ci95: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The ratio of means with a percentile bootstrap interval (deterministic for a seed).
pub fn ratio_of_means(numerator: &[f64], denominator: &[f64], seed: u64) -> Option<Ratio> {
    if numerator.is_empty() || denominator.is_empty() {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let den = mean(denominator);
    if den == 0.0 {
        return None;
    }
    let ratio = mean(numerator) / den;
    if numerator.len() < MIN_RUNS_FOR_INTERVAL || denominator.len() < MIN_RUNS_FOR_INTERVAL {
        return Some(Ratio {
            ratio,
            ci95: None,
            note: Some(format!(
                "{} and {} runs: at least {MIN_RUNS_FOR_INTERVAL} per backend are needed for an interval",
                numerator.len(),
                denominator.len()
            )),
        });
    }
    let mut rng = SplitMix64::seed_from_u64(seed);
    let mut ratios = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        let num = resample_mean(numerator, &mut rng);
        let den = resample_mean(denominator, &mut rng);
        if den != 0.0 {
            ratios.push(num / den);
        }
    }
    ratios.sort_by(f64::total_cmp);
    Some(Ratio {
        ratio,
        ci95: Some([percentile(&ratios, 0.025), percentile(&ratios, 0.975)]),
        note: None,
    })
}

fn resample_mean(values: &[f64], rng: &mut SplitMix64) -> f64 {
    let n = values.len();
    (0..n).map(|_| values[below(rng, n)]).sum::<f64>() / n as f64
}

/// Linear-interpolated percentile of sorted values (`q` in 0..=1).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Uniform in `0..n` (rejection sampling, no modulo bias) from SplitMix64, which gives the
/// same numbers on every platform and every version of the crate.
fn below(rng: &mut SplitMix64, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let x = rng.next_u64();
        if x < zone {
            return (x % n) as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_median_sd_and_t_interval_on_known_values() {
        let s = summarize(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.n, 8);
        assert_eq!(s.mean, 5.0);
        assert_eq!(s.median, 4.5);
        assert_eq!((s.min, s.max), (2.0, 9.0));
        // Sum of squares 32, n − 1 = 7.
        let sd = (32.0f64 / 7.0).sqrt();
        assert!((s.sd.unwrap() - sd).abs() < 1e-12);
        let half = 2.365 * sd / 8f64.sqrt();
        let ci = s.ci95.unwrap();
        assert!((ci[0] - (5.0 - half)).abs() < 1e-12);
        assert!((ci[1] - (5.0 + half)).abs() < 1e-12);
    }

    #[test]
    fn too_few_runs_give_no_interval_and_say_why() {
        let one = summarize(&[3.0]).unwrap();
        assert_eq!(one.sd, None);
        assert_eq!(one.ci95, None);
        assert!(one.note.unwrap().contains("at least 3"));
        let two = summarize(&[3.0, 5.0]).unwrap();
        assert_eq!(two.median, 4.0);
        assert_eq!(two.ci95, None);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn t_quantiles_match_tables() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(10), 2.228);
        assert!((t_975(40) - 2.021).abs() < 0.002);
        assert!((t_975(120) - 1.980).abs() < 0.002);
    }

    #[test]
    fn bootstrap_ratio_is_deterministic_and_brackets_the_ratio() {
        let a = [10.0, 12.0, 11.0, 13.0];
        let b = [20.0, 25.0, 22.0, 21.0];
        let r1 = ratio_of_means(&b, &a, 7).unwrap();
        let r2 = ratio_of_means(&b, &a, 7).unwrap();
        assert_eq!(r1, r2);
        assert!((r1.ratio - 22.0 / 11.5).abs() < 1e-12);
        let [lo, hi] = r1.ci95.unwrap();
        assert!(lo < r1.ratio && r1.ratio < hi);
        // Every resampled ratio lies between the extreme possible ratios.
        assert!(lo >= 20.0 / 13.0 && hi <= 25.0 / 10.0);
        let few = ratio_of_means(&b[..2], &a, 7).unwrap();
        assert_eq!(few.ci95, None);
        assert!(few.note.is_some());
    }

    #[test]
    fn identical_runs_give_a_point_interval() {
        let r = ratio_of_means(&[2.0, 2.0, 2.0], &[1.0, 1.0, 1.0], 1).unwrap();
        assert_eq!(r.ci95, Some([2.0, 2.0]));
    }
}
