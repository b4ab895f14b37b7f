"""The figures of an experiment: pure functions, no database.

- `wilson_interval(successes, trials)`: the Wilson score interval of a proportion (95% by default). Unlike the
  normal approximation it stays inside [0, 1] and is honest for small counts and rates near 0 or 1.
- `two_proportion_test(x1, n1, x2, n2)`: the two-sided z-test of p1 = p2 with the pooled proportion.
- `comparison_judged(...)`: the no-peeking rule: a difference is judged only once every variant has reached the
  sample size fixed when the experiment started; before that the answer is "not judged yet", whatever p says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal
ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    rate: float
    low: float
    high: float


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of successes / trials. No trials: rate 0 and the whole [0, 1]."""
    if trials <= 0:
        return Interval(0.0, 0.0, 1.0)
    if not 0 <= successes <= trials:
        raise ValueError("successes must be between 0 and trials")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class TestResult:
    z: float
    p_value: float


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> TestResult:
    """Two-sided z-test of p1 = p2 (pooled standard error). z > 0 when the first rate is higher. When the pooled
    rate is 0 or 1 (nothing to tell apart) or a side has no trials: z 0, p 1."""
    if n1 <= 0 or n2 <= 0:
        return TestResult(0.0, 1.0)
    pooled = (x1 + x2) / (n1 + n2)
    standard_error = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if standard_error == 0:
        return TestResult(0.0, 1.0)
    z = (x1 / n1 - x2 / n2) / standard_error
    return TestResult(z, math.erfc(abs(z) / math.sqrt(2)))


@dataclass(frozen=True)
class Judgement:
    judged: bool
    significant: bool
    p_value: float
    alpha: float
    text: str


def comparison_judged(
    *, x: int, n: int, control_x: int, control_n: int, sample_size: int, comparisons: int = 1
) -> Judgement:
    """Is this variant's rate different from the control's? Judged only when both reached `sample_size` (fixed at
    the start: looking early and stopping at the first small p inflates false positives). `comparisons` variants
    against one control share the 5% (Bonferroni: each is tested at 5% / comparisons)."""
    alpha = ALPHA / max(1, comparisons)
    result = two_proportion_test(x, n, control_x, control_n)
    if min(n, control_n) < sample_size:
        return Judgement(False, False, result.p_value, alpha, f"not judged yet: {min(n, control_n)} of {sample_size}")
    significant = result.p_value < alpha
    if not significant:
        return Judgement(True, False, result.p_value, alpha, f"no significant difference (p = {result.p_value:.3f})")
    direction = "higher" if result.z > 0 else "lower"
    return Judgement(True, True, result.p_value, alpha, f"significantly {direction} (p = {result.p_value:.4f})")
