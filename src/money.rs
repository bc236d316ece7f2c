//! Money: the one rounding rule and the fixed-point representations of SPEC §4.
//!
//! Amounts are `Decimal128(18,2)` (integer cents) and unit prices `Decimal128(18,6)` (integer
//! micro-dollars). Every division that produces money goes through [`div_round`]: round half
//! away from zero, the rule DataFusion's `round()` applies to decimals, so Rust kernels and SQL
//! steps agree to the cent.

/// Micro-dollars per cent (`Decimal128(18,6)` → `Decimal128(18,2)`).
pub const MICROS_PER_CENT: i128 = 10_000;

/// `num / den` rounded half away from zero. `den` must be non-zero.
pub fn div_round(num: i128, den: i128) -> i128 {
    debug_assert!(den != 0, "div_round by zero");
    if den == 0 {
        return 0;
    }
    let (q, r) = (num / den, num % den);
    if 2 * r.abs() >= den.abs() {
        q + num.signum() * den.signum()
    } else {
        q
    }
}

/// Cents of `units × unit_price_micros`, rounded half away from zero.
pub fn cents_of(units: i128, unit_price_micros: i128) -> i128 {
    div_round(units * unit_price_micros, MICROS_PER_CENT)
}

/// Cents as a plain decimal string: `-1234` → `-12.34`.
pub fn format_cents(cents: i128) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// Split `total` cents over `weights` proportionally, each part rounded with [`div_round`] and
/// the rounding remainder put on the last part, so the parts sum to `total` exactly
/// (SPEC §7: "the rounding remainder goes to the final month").
pub fn allocate(total: i128, weights: &[i128]) -> Vec<i128> {
    let sum: i128 = weights.iter().sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if sum == 0 {
        let mut v = vec![0; weights.len()];
        if let Some(last) = v.last_mut() {
            *last = total;
        }
        return v;
    }
    let mut parts: Vec<i128> = weights.iter().map(|w| div_round(total * w, sum)).collect();
    let allocated: i128 = parts[..parts.len() - 1].iter().sum();
    if let Some(last) = parts.last_mut() {
        *last = total - allocated;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(-4, 3), -1);
        assert_eq!(div_round(7, -2), -4);
        assert_eq!(cents_of(3, 333_333), 100); // 3 × $0.333333 = $0.999999 → $1.00
    }

    #[test]
    fn allocation_sums_exactly() {
        // SPEC §7 oracle: $120 over 2024-06-15..2024-10-13 (120 days) → 16, 31, 31, 30, 12.
        let parts = allocate(12_000, &[16, 31, 31, 30, 12]);
        assert_eq!(parts, vec![1_600, 3_100, 3_100, 3_000, 1_200]);
        // $100 over 3 equal parts: 33.33, 33.33, 33.34 — remainder on the last.
        assert_eq!(allocate(10_000, &[1, 1, 1]), vec![3_333, 3_333, 3_334]);
        assert_eq!(allocate(10_000, &[0, 0]), vec![0, 10_000]);
        assert_eq!(format_cents(-123_456), "-1234.56");
        assert_eq!(format_cents(5), "0.05");
    }
}
