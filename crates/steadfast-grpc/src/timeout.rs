//! The `grpc-timeout` header, exactly as grpc's `doc/PROTOCOL-HTTP2.md` defines it:
//!
//! ```text
//! Timeout      → "grpc-timeout" TimeoutValue TimeoutUnit
//! TimeoutValue → {positive integer as ASCII string of at most 8 digits}
//! TimeoutUnit  → Hour / Minute / Second / Millisecond / Microsecond / Nanosecond
//! Hour → "H"  Minute → "M"  Second → "S"  Millisecond → "m"  Microsecond → "u"
//! Nanosecond → "n"
//! ```

use std::fmt;
use std::time::Duration;

use http::HeaderValue;

/// The header's name.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The largest value the header can carry: 8 digits.
const MAX_VALUE: u64 = 99_999_999;

/// Units from the finest to the coarsest, with their length in nanoseconds (an hour
/// of 8 digits does not fit in a `u64` of nanoseconds: `u128`).
const UNITS: [(u8, u128); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60 * 1_000_000_000),
    (b'H', 3_600 * 1_000_000_000),
];

/// A `grpc-timeout` value that does not follow the grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedTimeout(pub(crate) String);

impl fmt::Display for MalformedTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed grpc-timeout {:?}: expected 1 to 8 ASCII digits and a unit (H, M, S, m, u, n)",
            self.0
        )
    }
}

impl std::error::Error for MalformedTimeout {}

/// Parses a `grpc-timeout` value.
pub fn parse(value: &[u8]) -> Result<Duration, MalformedTimeout> {
    let malformed = || MalformedTimeout(String::from_utf8_lossy(value).into_owned());
    let Some((&unit, digits)) = value.split_last() else {
        return Err(malformed());
    };
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(malformed());
    }
    let nanos_per_unit = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, n)| *n)
        .ok_or_else(malformed)?;
    // At most 8 digits: fits in a u32.
    let count = digits
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    // Whole seconds for S, M, H (99,999,999 H is 3.6e11 s), nanoseconds below.
    let per_unit = if nanos_per_unit >= 1_000_000_000 {
        Duration::from_secs((nanos_per_unit / 1_000_000_000) as u64)
    } else {
        Duration::from_nanos(nanos_per_unit as u64)
    };
    per_unit.checked_mul(count).ok_or_else(malformed)
}

/// Formats `timeout` in the finest unit whose value fits in 8 digits, rounding up (a
/// deadline sent to the server is never earlier than the caller's). Longer than
/// 99,999,999 hours is sent as that.
pub fn format(timeout: Duration) -> String {
    let nanos = timeout.as_nanos();
    for (unit, per) in UNITS {
        let count = nanos.div_ceil(per);
        if count <= u128::from(MAX_VALUE) {
            return format!("{count}{}", unit as char);
        }
    }
    format!("{MAX_VALUE}H")
}

/// [`format`] as a header value.
pub fn header_value(timeout: Duration) -> HeaderValue {
    // Digits and one ASCII letter: always a valid header value.
    HeaderValue::from_str(&format(timeout)).unwrap_or(HeaderValue::from_static("0n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse(b"1H"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse(b"2M"), Ok(Duration::from_secs(120)));
        assert_eq!(parse(b"3S"), Ok(Duration::from_secs(3)));
        assert_eq!(parse(b"4m"), Ok(Duration::from_millis(4)));
        assert_eq!(parse(b"5u"), Ok(Duration::from_micros(5)));
        assert_eq!(parse(b"6n"), Ok(Duration::from_nanos(6)));
        assert_eq!(parse(b"0m"), Ok(Duration::ZERO));
        assert_eq!(parse(b"00000010S"), Ok(Duration::from_secs(10)));
        assert_eq!(
            parse(b"99999999H"),
            Ok(Duration::from_secs(99_999_999 * 3600))
        );
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        for bad in [
            &b""[..],
            b"S",
            b"10",
            b"123456789S",
            b"1s",
            b"1h",
            b"-1S",
            b"+1S",
            b" 1S",
            b"1S ",
            b"1.5S",
            b"1SS",
            b"1 S",
            b"\xff1S",
        ] {
            assert!(
                parse(bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse(b"1x").unwrap_err().to_string(),
            "malformed grpc-timeout \"1x\": expected 1 to 8 ASCII digits and a unit (H, M, S, m, u, n)"
        );
    }

    #[test]
    fn formats_in_the_finest_unit_that_fits() {
        assert_eq!(format(Duration::ZERO), "0n");
        assert_eq!(format(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(format(Duration::from_nanos(100_000_000)), "100000u");
        assert_eq!(format(Duration::from_millis(250)), "250000u");
        assert_eq!(format(Duration::from_secs(30)), "30000000u");
        assert_eq!(format(Duration::from_secs(200)), "200000m");
        assert_eq!(format(Duration::from_secs(100_000)), "100000S");
        assert_eq!(format(Duration::from_secs(100_000_000)), "1666667M");
        assert_eq!(format(Duration::from_secs(99_999_999 * 3600)), "99999999H");
        assert_eq!(format(Duration::MAX), "99999999H");
    }

    #[test]
    fn rounds_up_never_down() {
        // 100,000,001 ns does not fit in 8 digits of ns: 100,001 us, not 100,000.
        assert_eq!(format(Duration::from_nanos(100_000_001)), "100001u");
    }

    #[test]
    fn round_trips_within_one_unit() {
        for nanos in [1u64, 999, 1_000_001, 123_456_789_012, 7_200_000_000_000] {
            let d = Duration::from_nanos(nanos);
            let back = parse(format(d).as_bytes()).expect("own format parses");
            assert!(back >= d, "{d:?} became {back:?}");
            // The finest unit that fits leaves at least 5 significant digits.
            assert!(
                back - d < d / 100_000 + Duration::from_nanos(1),
                "{d:?} became {back:?}"
            );
        }
    }
}
