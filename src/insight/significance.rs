//! The statistics behind proposals: how surprising a count is, and how many
//! of many surprising counts to believe.
//!
//! - [`support_p_value`] and its streaming form [`SupportTests`]: P(X ≥ k)
//!   where X counts successes of independent trials with the given
//!   chances (a Poisson binomial) — a sequence's support is exactly that,
//!   one trial per session. Exact (a dynamic programme over the count)
//!   while sessions × k stays small; beyond, the Poisson tail when every
//!   chance is small (Le Cam: the two differ by at most Σ p²), else the
//!   refined normal one.
//! - [`benjamini_hochberg`]: q-values controlling the false discovery rate
//!   over a family of tests.
//! - [`wilson_lower_bound`]: the lower end of the Wilson score interval of
//!   a proportion — a rate over few trials is not trusted as much as the
//!   same rate over many.

/// Supports below which a [`SupportTests`] test is exact, and the work (trials
/// × support) up to which it stays exact. Beyond either, the approximations
/// are used, and they can only err where no decision hangs on them:
/// - k ≥ 100: a sequence at least twice as common as chance (the least
///   lift proposed) has μ ≤ k/2 and σ² ≤ μ, so it stands ≥ √(k/2) ≥ 7
///   standard deviations out — p below 10⁻⁹ by any tail, under every
///   Benjamini–Hochberg cut-off. Below lift 2 nothing is proposed.
/// - k < 100 over more than 40 000 trials: every chance small gives the
///   Poisson tail, which is conservative (a Poisson binomial is more
///   concentrated than the Poisson of its mean, Hoeffding 1956).
///
/// The exact tail costs trials × k steps: at 1 M calls, ~70 000 mined
/// sequences over 20 000 sessions, the popular pairs of support in the
/// thousands alone would cost 3.5 G steps.
const EXACT_SUPPORT: usize = 100;
const EXACT_WORK: usize = 4_000_000;
/// Largest per-trial chance for which the Poisson tail stands in.
const SMALL_CHANCE: f64 = 0.05;

/// P(X ≥ `k`) where X is the number of successes of independent trials
/// with probabilities `chances`.
#[cfg(test)]
pub fn support_p_value(chances: &[f64], k: u64) -> f64 {
    let mut tests = SupportTests::new(&[k]);
    for &p in chances {
        tests.add(0, p);
    }
    tests.p_value(0)
}

/// Many supports, each tested against chances fed one trial at a time:
/// the p-values of [`support_p_value`] without keeping the chances. The
/// state of every test lives in two flat arrays, in the order given, so a
/// caller that feeds neighbouring tests together reads memory in order.
#[derive(Debug, Clone)]
pub struct SupportTests {
    tests: Vec<TestState>,
    /// Each exact test's P(X = j) for j < k over its trials so far, at
    /// `TestState::below`.
    below: Vec<f64>,
}

#[derive(Debug, Clone, Copy)]
struct TestState {
    mean: f64,
    /// Σ p(1 − p) and Σ p(1 − p)(1 − 2p): the variance and third central
    /// moment, for the refined normal tail.
    variance: f64,
    third: f64,
    k: u32,
    trials: u32,
    /// Where its P(X = j) start in `SupportTests::below`.
    below: u32,
    /// Still exact: k and trials × k within [`EXACT_SUPPORT`] and
    /// [`EXACT_WORK`].
    exact: bool,
    all_small: bool,
}

impl SupportTests {
    /// One test per observed support in `supports`.
    pub fn new(supports: &[u64]) -> Self {
        let mut below = Vec::new();
        let tests = supports
            .iter()
            .map(|&k| {
                let k = u32::try_from(k).unwrap_or(u32::MAX);
                let exact = k > 0 && (k as usize) < EXACT_SUPPORT;
                let at = u32::try_from(below.len()).expect("fewer than 2^32 exact states");
                if exact {
                    below.push(1.0);
                    below.resize(below.len() + k as usize - 1, 0.0);
                }
                TestState {
                    mean: 0.0,
                    variance: 0.0,
                    third: 0.0,
                    k,
                    trials: 0,
                    below: at,
                    exact,
                    all_small: true,
                }
            })
            .collect();
        SupportTests { tests, below }
    }

    /// One more trial, with success chance `p`, for test `at`.
    pub fn add(&mut self, at: usize, p: f64) {
        let test = &mut self.tests[at];
        test.mean += p;
        let spread = p * (1.0 - p);
        test.variance += spread;
        test.third += spread * (1.0 - 2.0 * p);
        test.all_small &= p <= SMALL_CHANCE;
        test.trials = test.trials.saturating_add(1);
        let (k, trials) = (test.k as usize, test.trials as usize);
        if trials.saturating_mul(k) > EXACT_WORK {
            test.exact = false;
        }
        if test.exact {
            // Counts up to min(trials, k − 1) are possible; above, zeros.
            let start = test.below as usize;
            step(&mut self.below[start..=start + trials.min(k - 1)], p);
        }
    }

    /// Test `at`'s expected number of successes: the sum of its chances.
    pub fn expected(&self, at: usize) -> f64 {
        self.tests[at].mean
    }

    /// Test `at`'s P(X ≥ k): exact (a dynamic programme over the count)
    /// while k and trials × k stay within [`EXACT_SUPPORT`] and
    /// [`EXACT_WORK`]; beyond, the Poisson tail when every chance is small
    /// (Le Cam: the two differ by at most Σ p²), else the refined normal
    /// one (a skewness-corrected normal with a continuity correction).
    pub fn p_value(&self, at: usize) -> f64 {
        let test = &self.tests[at];
        if test.k == 0 {
            return 1.0;
        }
        if test.k > test.trials {
            return 0.0;
        }
        if test.exact {
            let start = test.below as usize;
            let below = &self.below[start..start + test.k as usize];
            return (1.0 - below.iter().sum::<f64>()).clamp(0.0, 1.0);
        }
        if test.all_small {
            return poisson_upper_tail(u64::from(test.k), test.mean);
        }
        refined_normal_upper_tail(test.k as usize, test.mean, test.variance, test.third)
    }
}

/// One trial of chance `p` over P(X = j), j < `below.len()`: from the
/// top down, so that each step reads the previous trial's values; in
/// blocks of eight copied first, which the compiler turns into vector
/// instructions (the same operations in the same order as one at a time).
fn step(below: &mut [f64], p: f64) {
    const BLOCK: usize = 8;
    let miss = 1.0 - p;
    let mut end = below.len();
    while end > BLOCK {
        let start = end - BLOCK;
        let mut old = [0.0; BLOCK + 1];
        old.copy_from_slice(&below[start - 1..end]);
        for (i, slot) in below[start..end].iter_mut().enumerate() {
            *slot = old[i + 1] * miss + old[i] * p;
        }
        end = start;
    }
    for j in (1..end).rev() {
        below[j] = below[j] * miss + below[j - 1] * p;
    }
    below[0] *= miss;
}

/// P(X ≥ k) by the refined normal approximation of a Poisson binomial
/// (Volkova 1996): `Q(x) + γ (x² − 1) φ(x) / 6` at `x = (k − ½ − μ) / σ`,
/// `γ` the skewness. Falls back to the plain normal tail where the
/// correction would make it negative.
fn refined_normal_upper_tail(k: usize, mean: f64, variance: f64, third: f64) -> f64 {
    let sd = variance.sqrt();
    let x = (k as f64 - 0.5 - mean) / sd;
    let normal = 0.5 * libm::erfc(x / std::f64::consts::SQRT_2);
    let density = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let skewness = third / (variance * sd);
    let refined = normal + skewness * (x * x - 1.0) * density / 6.0;
    if refined > 0.0 {
        refined.min(1.0)
    } else {
        normal
    }
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

    /// P(X ≥ k) by the dynamic programme over every count, no budget.
    fn exact_reference(chances: &[f64], k: usize) -> f64 {
        let mut pmf = vec![0.0; chances.len() + 1];
        pmf[0] = 1.0;
        for (trials, &p) in chances.iter().enumerate() {
            for j in (1..=trials + 1).rev() {
                pmf[j] = pmf[j] * (1.0 - p) + pmf[j - 1] * p;
            }
            pmf[0] *= 1.0 - p;
        }
        pmf[k..].iter().sum()
    }

    /// A skewed family: most chances small, a few large (a fixed
    /// pseudo-random stream).
    fn skewed_chances(n: usize) -> Vec<f64> {
        let mut state = 11u64;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                0.9 * u.powi(6)
            })
            .collect()
    }

    #[test]
    fn supports_from_100_on_are_approximated_where_no_decision_hangs_on_it() {
        let chances = skewed_chances(1_500);
        let mean: f64 = chances.iter().sum();
        assert!(mean > 150.0 && mean < 250.0, "{mean}");
        let sd = chances.iter().map(|p| p * (1.0 - p)).sum::<f64>().sqrt();
        // Near the mean and a few deviations out, the refined normal is
        // within a few per cent of the exact tail...
        for z in [0.0, 1.0, 2.0, 3.0] {
            let k = (mean + z * sd).ceil() as u64;
            let (approx, exact) = (
                support_p_value(&chances, k),
                exact_reference(&chances, k as usize),
            );
            assert!(
                (approx / exact - 1.0).abs() < 0.05,
                "k {k}: {approx} vs {exact}"
            );
        }
        // ...and at lift 2, the least proposed, both are far below any
        // Benjamini–Hochberg cut-off of a million tests.
        let k = (2.0 * mean).ceil() as u64;
        assert!(support_p_value(&chances, k) < 1e-12);
        assert!(exact_reference(&chances, k as usize) < 1e-12);
        // Below 100 the same family is exact.
        let small = &chances[..600];
        let k = 60;
        let exact = exact_reference(small, k);
        assert!((support_p_value(small, k as u64) - exact).abs() < 1e-12);
    }

    #[test]
    fn streaming_tests_keep_each_tests_state_apart() {
        let mut tests = SupportTests::new(&[2, 150, 0]);
        for p in [0.5, 0.5, 0.5] {
            tests.add(0, p);
        }
        for _ in 0..300 {
            tests.add(1, 0.25);
        }
        assert!(close(tests.p_value(0), 0.5));
        assert!(close(tests.expected(1), 75.0));
        assert!(tests.p_value(1) < 1e-9);
        assert_eq!(tests.p_value(2), 1.0);
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
