//! What every benchmark does with repeated measurements: the median (or mean) over rounds,
//! and brindle over its baseline.

/// The median of the finite values (the mean of the middle two for an even count); `None`
/// without any.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut sorted: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The arithmetic mean; NaN without values.
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// brindle / baseline, when both are there and finite and the baseline is not zero.
pub fn ratio(brindle: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    match (brindle, baseline) {
        (Some(b), Some(k)) if k != 0.0 && b.is_finite() && k.is_finite() => Some(b / k),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_value_and_skips_non_finite_ones() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([f64::NAN, 5.0, f64::INFINITY]), Some(5.0));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn mean_of_nothing_is_nan() {
        assert_eq!(mean([1.0, 2.0, 6.0]), 3.0);
        assert!(mean(std::iter::empty()).is_nan());
    }

    #[test]
    fn ratio_needs_both_values_and_a_finite_nonzero_baseline() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
        assert_eq!(ratio(Some(f64::NAN), Some(2.0)), None);
        assert_eq!(ratio(Some(3.0), Some(f64::INFINITY)), None);
        assert_eq!(ratio(None, Some(2.0)), None);
        assert_eq!(ratio(Some(3.0), None), None);
    }
}
