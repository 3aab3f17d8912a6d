//! Tests of the codes themselves.

use super::*;

// --- OsRandom --------------------------------------------------------------------------------

/// 20,000 codes from the OS CSPRNG: six ASCII digits each, every position uniform over 0-9
/// (chi-square, 9 degrees of freedom, false alarm about 1e-6 per position), leading zeros
/// included, and almost no repeats.
#[test]
fn os_random_otp_codes_are_uniform_six_digit_strings() {
    const SAMPLES: u32 = 20_000;
    // P(chi-square with 9 dof > 45) is about 9e-7.
    const CHI_SQUARE_LIMIT: f64 = 45.0;
    let mut counts = [[0u32; 10]; 6];
    let mut distinct = HashSet::new();
    for _ in 0..SAMPLES {
        let otp = OsRandom.otp_code();
        let digits = otp.expose();
        assert_eq!(digits.len(), 6, "{digits}");
        for (position, byte) in digits.bytes().enumerate() {
            assert!(byte.is_ascii_digit(), "{digits}");
            counts[position][usize::from(byte - b'0')] += 1;
        }
        distinct.insert(digits.to_owned());
    }

    let expected = f64::from(SAMPLES) / 10.0;
    for (position, per_digit) in counts.iter().enumerate() {
        let chi_square: f64 = per_digit
            .iter()
            .map(|&n| (f64::from(n) - expected).powi(2) / expected)
            .sum();
        assert!(
            chi_square < CHI_SQUARE_LIMIT,
            "position {position} is not uniform: {per_digit:?} (chi-square {chi_square:.1})"
        );
    }
    assert!(
        counts[0][0] > 1_500,
        "too few leading zeros: {}",
        counts[0][0]
    );
    // About 200 repeats are expected among 20,000 draws from a million.
    assert!(
        distinct.len() > 19_500,
        "only {} distinct codes",
        distinct.len()
    );
}
