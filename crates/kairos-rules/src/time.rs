//! Timestamps and durations without a date-time dependency: the rule language only needs
//! RFC 3339 instants in UTC arithmetic and CEL duration strings.

/// Nanoseconds since the Unix epoch (covers 1678..2262, plenty for offers and sessions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// A signed span of time in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

impl Timestamp {
    pub fn from_unix_seconds(secs: i64) -> Option<Self> {
        secs.checked_mul(NANOS_PER_SECOND).map(Timestamp)
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SECOND)
    }
}

impl Duration {
    pub fn from_seconds(secs: i64) -> Option<Self> {
        secs.checked_mul(NANOS_PER_SECOND).map(Duration)
    }

    pub fn seconds(self) -> i64 {
        self.0 / NANOS_PER_SECOND
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A parsed ISO 8601 date or date-time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedInstant {
    pub at: Timestamp,
    /// True when only a calendar date was given (`2026-12-31`): callers decide whether it means
    /// the start or the end of that day.
    pub date_only: bool,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, count: usize) -> Option<i64> {
        let slice = self.bytes.get(self.pos..self.pos + count)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += count;
        Some(
            slice
                .iter()
                .fold(0, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_any(&mut self, choices: &[u8]) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        if choices.contains(&b) {
            self.pos += 1;
            Some(b)
        } else {
            None
        }
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Parses `2026-12-31`, `2026-12-31T10:00:00Z`, `2026-12-31T10:00:00.5+02:00` (RFC 3339; a
/// space may replace the `T`).
pub fn parse_instant(text: &str) -> Result<ParsedInstant, String> {
    let bad = || format!("'{text}' is not a date (2026-12-31) or date-time (2026-12-31T10:00:00Z)");
    let mut c = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year = c.digits(4).ok_or_else(bad)?;
    if !c.eat(b'-') {
        return Err(bad());
    }
    let month = c.digits(2).ok_or_else(bad)? as u32;
    if !c.eat(b'-') {
        return Err(bad());
    }
    let day = c.digits(2).ok_or_else(bad)? as u32;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("'{text}' is not a valid calendar date"));
    }
    let days = days_from_civil(year, month, day);
    if c.done() {
        let at = Timestamp::from_unix_seconds(days * SECONDS_PER_DAY)
            .ok_or_else(|| format!("'{text}' is out of range"))?;
        return Ok(ParsedInstant {
            at,
            date_only: true,
        });
    }
    c.eat_any(b"Tt ").ok_or_else(bad)?;
    let hour = c.digits(2).ok_or_else(bad)?;
    if !c.eat(b':') {
        return Err(bad());
    }
    let minute = c.digits(2).ok_or_else(bad)?;
    if !c.eat(b':') {
        return Err(bad());
    }
    let second = c.digits(2).ok_or_else(bad)?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("'{text}' has an invalid time of day"));
    }
    let mut nanos = 0i64;
    if c.eat(b'.') {
        let start = c.pos;
        let mut scale = 100_000_000i64;
        while let Some(d) = c.digits(1) {
            nanos += d * scale;
            scale /= 10;
        }
        if c.pos == start {
            return Err(bad());
        }
    }
    let offset_secs = match c.eat_any(b"Zz+-") {
        Some(b'Z' | b'z') => 0,
        Some(sign) => {
            let oh = c.digits(2).ok_or_else(bad)?;
            if !c.eat(b':') {
                return Err(bad());
            }
            let om = c.digits(2).ok_or_else(bad)?;
            let secs = oh * 3600 + om * 60;
            if sign == b'-' { -secs } else { secs }
        }
        _ => return Err(format!("'{text}' needs a time zone (Z or +01:00)")),
    };
    if !c.done() {
        return Err(bad());
    }
    let secs = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_secs;
    let at = Timestamp::from_unix_seconds(secs)
        .and_then(|t| t.0.checked_add(nanos).map(Timestamp))
        .ok_or_else(|| format!("'{text}' is out of range"))?;
    Ok(ParsedInstant {
        at,
        date_only: false,
    })
}

/// Formats as RFC 3339 in UTC, with fractional seconds only when present.
pub fn format_timestamp(ts: Timestamp) -> String {
    let secs = ts.0.div_euclid(NANOS_PER_SECOND);
    let nanos = ts.0.rem_euclid(NANOS_PER_SECOND);
    let (year, month, day) = civil_from_days(secs.div_euclid(SECONDS_PER_DAY));
    let tod = secs.rem_euclid(SECONDS_PER_DAY);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses CEL duration strings: a sequence of decimal numbers with units `h`, `m`, `s`, `ms`,
/// `us`, `ns`, optionally signed (`1h30m`, `-2.5s`). Kairos adds `d` for days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration (like 30s, 10m, 12h or 30d)");
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per_unit: i128 = match unit {
            "d" => 86_400 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return Err(bad()),
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
            return Err(bad());
        }
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        total += whole.checked_mul(nanos_per_unit).ok_or_else(bad)?;
        let mut scale = nanos_per_unit;
        for d in frac_part.bytes() {
            scale /= 10;
            total += i128::from(d - b'0') * scale;
        }
        if total > i128::from(i64::MAX) {
            return Err(format!("'{text}' is too long a duration"));
        }
        rest = after;
    }
    let nanos = total as i64;
    Ok(Duration(if negative { -nanos } else { nanos }))
}

/// Formats a duration the way CEL's `string(duration)` does: seconds with a `s` suffix.
pub fn format_duration(d: Duration) -> String {
    let secs = d.0 / NANOS_PER_SECOND;
    let nanos = (d.0 % NANOS_PER_SECOND).abs();
    if nanos == 0 {
        format!("{secs}s")
    } else {
        let sign = if d.0 < 0 && secs == 0 { "-" } else { "" };
        let frac = format!("{nanos:09}");
        format!("{sign}{secs}.{}s", frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parses_dates_and_date_times() {
        let d = parse_instant("2026-12-31").unwrap();
        assert!(d.date_only);
        assert_eq!(format_timestamp(d.at), "2026-12-31T00:00:00Z");
        let t = parse_instant("2026-01-01T10:30:00.25+02:00").unwrap();
        assert_eq!(format_timestamp(t.at), "2026-01-01T08:30:00.25Z");
        assert!(parse_instant("2026-02-30").is_err());
        assert!(
            parse_instant("2026-01-01T10:00:00")
                .unwrap_err()
                .contains("time zone")
        );
        assert!(parse_instant("tomorrow").is_err());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_seconds(30 * 86_400).unwrap()
        );
        assert_eq!(
            parse_duration("1h30m").unwrap(),
            Duration::from_seconds(5_400).unwrap()
        );
        assert_eq!(parse_duration("-1.5s").unwrap(), Duration(-1_500_000_000));
        assert_eq!(format_duration(Duration(-1_500_000_000)), "-1.5s");
        for bad in ["", "10", "10x", "h", "1..5s", "-"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
