//! Durations as the configuration file and the logs write them: "200ms", "1.5s", "2m".
//!
//! Parsing and formatting only, exact to the millisecond both ways. Which durations a
//! setting accepts, and how they relate, is the business of [`crate::config`].

use std::time::Duration;

/// Parses "250ms", "2s", "1.5s", "5m", "1h" (a number and a unit, no spaces needed),
/// exactly to the nanosecond (digits below one are dropped), at most 1e9 seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    /// The longest duration accepted, in nanoseconds: about 31 years.
    const MAX_NANOS: u128 = 1_000_000_000 * 1_000_000_000;
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("\"{text}\" has no unit: write e.g. \"200ms\" or \"2s\""))?;
    let (number, unit) = text.split_at(split);
    let unit_nanos: u128 = match unit.trim() {
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => {
            return Err(format!(
                "\"{text}\": unknown unit \"{other}\" (use us, ms, s, m or h)"
            ));
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(format!("\"{text}\" does not start with a number"));
    }
    // Decimal arithmetic, not f64: a float cannot hold every millisecond of a long
    // duration, and what format_duration writes must read back unchanged.
    let out_of_range = || format!("\"{text}\" is out of range");
    // Both parts are ASCII digits only; 20 whole digits and 18 fraction digits keep
    // every product below in u128, and fraction digits past the 18th are below a
    // nanosecond even in hours.
    let whole = whole.trim_start_matches('0');
    if whole.len() > 20 {
        return Err(out_of_range());
    }
    let fraction = &fraction[..fraction.len().min(18)];
    let digits = |part: &str| part.parse::<u128>().unwrap_or(0);
    let scale = 10u128.pow(fraction.len() as u32);
    let nanos = digits(whole) * unit_nanos + digits(fraction) * unit_nanos / scale;
    if nanos > MAX_NANOS {
        return Err(out_of_range());
    }
    // nanos <= MAX_NANOS < u64::MAX.
    Ok(Duration::from_nanos(nanos as u64))
}

/// Formats a duration the way the file writes them ("200ms", "2s", "1.5s"), to the
/// millisecond: precise enough for heartbeat timing and easy to read in a log.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        format!("{}us", d.as_micros())
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("200").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 days").is_err());
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(3)), "3s");
        assert_eq!(format_duration(Duration::from_micros(151_208)), "151ms");
        assert_eq!(format_duration(Duration::from_micros(250)), "250us");
    }

    #[test]
    fn long_durations_read_back_to_the_exact_millisecond() {
        // Found by tests/properties.rs: read through an f64, this was 1 ns too long.
        assert_eq!(
            parse_duration("16769328.901s"),
            Ok(Duration::from_millis(16_769_328_901))
        );
        assert_eq!(
            parse_duration("1000000000s"),
            Ok(Duration::from_secs(1_000_000_000))
        );
        assert!(parse_duration("1000000000.001s").is_err());
        assert!(parse_duration("16666667m").is_err());
    }
}
