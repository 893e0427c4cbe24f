//! The statistics behind proposals: how surprising a count is, and how many
//! of many surprising counts to believe.
//!
//! - [`support_p_value`]: P(X ≥ k) where X counts successes of independent
//!   trials with the given chances (a Poisson binomial) — a sequence's
//!   support is exactly that, one trial per session. Exact (a dynamic
//!   programme over the count) while sessions × k stays small; beyond,
//!   the Poisson tail when every chance is small (Le Cam: the two differ
//!   by at most Σ p²), else the normal one with a continuity correction.
//! - [`benjamini_hochberg`]: q-values controlling the false discovery rate
//!   over a family of tests.
//! - [`wilson_lower_bound`]: the lower end of the Wilson score interval of
//!   a proportion — a rate over few trials is not trusted as much as the
//!   same rate over many.

/// Sessions × observed count up to which [`support_p_value`] is exact.
const EXACT_WORK: usize = 4_000_000;
/// Largest per-trial chance for which the Poisson tail stands in.
const SMALL_CHANCE: f64 = 0.05;

/// P(X ≥ `k`) where X is the number of successes of independent trials
/// with probabilities `chances`.
pub fn support_p_value(chances: &[f64], k: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > chances.len() as u64 {
        return 0.0;
    }
    let k = k as usize;
    if chances.len().saturating_mul(k) <= EXACT_WORK {
        return exact_tail(chances, k);
    }
    let mean: f64 = chances.iter().sum();
    if chances.iter().all(|&p| p <= SMALL_CHANCE) {
        return poisson_upper_tail(k as u64, mean);
    }
    let variance: f64 = chances.iter().map(|p| p * (1.0 - p)).sum();
    let z = (k as f64 - 0.5 - mean) / variance.sqrt();
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The Poisson binomial tail by dynamic programming over P(X = j), j < k.
fn exact_tail(chances: &[f64], k: usize) -> f64 {
    let mut below = vec![0.0; k];
    below[0] = 1.0;
    for (trials, &p) in chances.iter().enumerate() {
        let top = (trials + 1).min(k - 1);
        for j in (1..=top).rev() {
            below[j] = below[j] * (1.0 - p) + below[j - 1] * p;
        }
        below[0] *= 1.0 - p;
    }
    (1.0 - below.iter().sum::<f64>()).clamp(0.0, 1.0)
}

/// P(X ≥ k) for X ~ Poisson(`lambda`); 1 for k = 0 and for λ = ∞, 0 for
/// λ = 0 and k > 0.
pub fn poisson_upper_tail(k: u64, lambda: f64) -> f64 {
    if k == 0 || lambda.is_infinite() {
        return 1.0;
    }
    if lambda <= 0.0 || lambda.is_nan() {
        return 0.0;
    }
    let ln_lambda = lambda.ln();
    // ln P(X = i) = -λ + i ln λ - ln i!
    let mut ln_factorial = 0.0;
    for i in 2..=k {
        ln_factorial += (i as f64).ln();
    }
    let ln_pmf = |i: u64, ln_factorial: f64| -lambda + i as f64 * ln_lambda - ln_factorial;
    if (k as f64) > lambda {
        // The terms from k on shrink geometrically: sum them until they no
        // longer change the sum.
        let (mut i, mut ln_fact, mut sum) = (k, ln_factorial, 0.0);
        loop {
            let term = ln_pmf(i, ln_fact).exp();
            sum += term;
            if term <= sum * 1e-17 || term == 0.0 {
                break;
            }
            i += 1;
            ln_fact += (i as f64).ln();
        }
        sum.min(1.0)
    } else {
        // 1 minus the terms below k (each computed on its own, no
        // cancellation worth fearing: the tail here is at least ~0.4).
        let (mut below, mut ln_fact) = (0.0, 0.0);
        for i in 0..k {
            if i >= 2 {
                ln_fact += (i as f64).ln();
            }
            below += ln_pmf(i, ln_fact).exp();
        }
        (1.0 - below).clamp(0.0, 1.0)
    }
}

/// Benjamini–Hochberg q-values of `p`, in the same order: a test whose
/// q-value is at most `Q` is a discovery at a false discovery rate `Q`.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![1.0; m];
    let mut running: f64 = 1.0;
    for (rank, &at) in order.iter().enumerate().rev() {
        running = running.min(p[at] * m as f64 / (rank + 1) as f64);
        q[at] = running.min(1.0);
    }
    q
}

/// The lower bound of the Wilson score interval for `successes` out of
/// `trials` at normal quantile `z` (1.96: 95 % two-sided); 0 without trials.
pub fn wilson_lower_bound(successes: u64, trials: u64, z: f64) -> f64 {
    if trials == 0 {
        return 0.0;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let margin = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - margin) / (1.0 + z2 / n)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-300) || (a - b).abs() < 1e-15
    }

    #[test]
    fn poisson_tails_match_closed_forms() {
        assert_eq!(poisson_upper_tail(0, 3.0), 1.0);
        assert_eq!(poisson_upper_tail(2, 0.0), 0.0);
        assert!(close(poisson_upper_tail(1, 0.5), 1.0 - (-0.5f64).exp()));
        // P(X ≥ 3 | λ = 1) = 1 − e⁻¹ (1 + 1 + 1/2)
        assert!(close(
            poisson_upper_tail(3, 1.0),
            1.0 - 2.5 * (-1.0f64).exp()
        ));
        // Below the mean: P(X ≥ 2 | λ = 4) = 1 − e⁻⁴ (1 + 4)
        assert!(close(
            poisson_upper_tail(2, 4.0),
            1.0 - 5.0 * (-4.0f64).exp()
        ));
        // Far in the tail, no underflow to 0 too early, and monotone in k.
        let far = poisson_upper_tail(40, 2.0);
        assert!(far > 0.0 && far < 1e-30, "{far}");
        assert!(poisson_upper_tail(41, 2.0) < far);
        // Large counts stay finite and sensible.
        let p = poisson_upper_tail(1_100, 1_000.0);
        assert!(p > 0.0005 && p < 0.002, "{p}");
    }

    #[test]
    fn support_p_values_are_exact_for_small_families() {
        // Three fair coins: P(X ≥ 2) = 1/2, P(X ≥ 3) = 1/8.
        assert!(close(support_p_value(&[0.5; 3], 2), 0.5));
        assert!(close(support_p_value(&[0.5; 3], 3), 0.125));
        assert_eq!(support_p_value(&[0.5; 3], 4), 0.0);
        assert_eq!(support_p_value(&[0.1], 0), 1.0);
        // Mixed chances: P(X ≥ 2) for 0.2, 0.5, 0.9 = 0.1 + 0.4 + 0.09... by hand:
        // P(all) = 0.09; exactly two: 0.2·0.5·0.1 + 0.2·0.5·0.9 + 0.8·0.5·0.9 = 0.01 + 0.09 + 0.36
        assert!(close(support_p_value(&[0.2, 0.5, 0.9], 2), 0.09 + 0.46));
        // Ten sessions each with a 0.26 chance all showing it: 0.26^10,
        // where a Poisson of the same mean would say ~1e-3.
        let all = support_p_value(&[0.26; 10], 10);
        assert!(close(all, 0.26f64.powi(10)), "{all}");
    }

    #[test]
    fn large_families_use_the_approximations() {
        // Many small chances: close to the Poisson tail of their sum.
        let small = vec![0.001; 200_000];
        let p = support_p_value(&small, 250);
        let poisson = poisson_upper_tail(250, 200.0);
        assert!((p - poisson).abs() < 1e-12, "{p} vs {poisson}");
        // Many large chances: the normal tail, near 1/2 at the mean.
        let large = vec![0.5; 100_000];
        let p = support_p_value(&large, 50_000);
        assert!((p - 0.5).abs() < 0.01, "{p}");
        assert!(support_p_value(&large, 51_000) < 1e-9);
    }

    #[test]
    fn benjamini_hochberg_is_the_step_up_rule() {
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.2]);
        let expected = [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.2];
        for (got, want) in q.iter().zip(expected) {
            assert!(close(*got, want), "{q:?}");
        }
        assert!(benjamini_hochberg(&[]).is_empty());
        assert_eq!(benjamini_hochberg(&[0.9, 0.95]), [0.95, 0.95]);
    }

    #[test]
    fn wilson_bounds_shrink_with_evidence() {
        let few = wilson_lower_bound(5, 10, 1.96);
        assert!((few - 0.2366).abs() < 1e-4, "{few}");
        let many = wilson_lower_bound(500, 1000, 1.96);
        assert!(many > 0.46 && many < 0.5, "{many}");
        assert_eq!(wilson_lower_bound(0, 0, 1.96), 0.0);
        assert_eq!(wilson_lower_bound(0, 50, 1.96), 0.0);
    }
}
