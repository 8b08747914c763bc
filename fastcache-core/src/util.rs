//! Parsing and formatting with Redis' exact rules: which strings are
//! integers, which are floats, how doubles are printed, how glob patterns
//! match.

use crate::reply::{errors, Reply};

/// Parses a 64-bit signed integer the way Redis' `string2ll` does: no sign
/// other than a leading `-`, no leading zeros, no spaces.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// [`parse_i64`], or Redis' "not an integer" error.
pub fn int_arg(s: &[u8]) -> Result<i64, Reply> {
    parse_i64(s).ok_or(errors::NOT_INTEGER)
}

/// Parses a double the way Redis' `getDoubleFromObject` does: the whole
/// string must be a number (`inf`, `-inf`, exponents allowed), no leading
/// space, never NaN.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let lower = text.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust accepts "nan"/"inf" spellings the C library would too, but
            // never treat them as numbers here beyond the cases above.
            if lower.contains("nan") || lower.contains("inf") {
                return None;
            }
            let v = text.parse::<f64>().ok()?;
            // strtod reports overflow and underflow as ERANGE, which Redis
            // rejects: "1e400" is not infinity and "1e-400" is not zero.
            let mantissa = lower.split('e').next().unwrap_or("");
            if v.is_infinite() || (v == 0.0 && mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c))) {
                return None;
            }
            v
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// [`parse_f64`], or Redis' "not a valid float" error.
pub fn float_arg(s: &[u8]) -> Result<f64, Reply> {
    parse_f64(s).ok_or(errors::NOT_FLOAT)
}

/// Formats a double as C's `printf("%.17g")`, which is how Redis 7.0
/// replies with scores (`ZSCORE`, `ZINCRBY`, `WITHSCORES`).
pub fn format_g17(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // 17 significant digits: one before the point, sixteen after.
    let e = format!("{v:.16e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::with_capacity(24);
    if neg {
        out.push('-');
    }
    if !(-4..17).contains(&exp) {
        let d = digits.trim_end_matches('0');
        out.push_str(&d[..1]);
        if d.len() > 1 {
            out.push('.');
            out.push_str(&d[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp >= 0 {
        let point = exp as usize + 1;
        let (int, frac) = digits.split_at(point.min(digits.len()));
        out.push_str(int);
        let frac = frac.trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

/// Formats a double the way Redis' INCRBYFLOAT/HINCRBYFLOAT store results:
/// human-friendly, no exponent, shortest digits that read back the same.
pub fn format_human(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == v.trunc() && v.abs() < 1e17 {
        return format!("{}", v as i64);
    }
    format!("{v}")
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn eq_ic(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// Glob-style matching with Redis' `stringmatchlen` rules: `*`, `?`,
/// `[abc]`, `[^a]`, `[a-z]` and `\` escapes.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    fn lower(c: u8, nocase: bool) -> u8 {
        if nocase {
            c.to_ascii_lowercase()
        } else {
            c
        }
    }
    fn m(p: &[u8], s: &[u8], nocase: bool, depth: usize) -> bool {
        // Bounds the recursion a pathological pattern could cause.
        if depth > 1000 {
            return false;
        }
        let (mut pi, mut si) = (0, 0);
        while pi < p.len() {
            match p[pi] {
                b'*' => {
                    while pi + 1 < p.len() && p[pi + 1] == b'*' {
                        pi += 1;
                    }
                    if pi + 1 == p.len() {
                        return true;
                    }
                    for start in si..=s.len() {
                        if m(&p[pi + 1..], &s[start..], nocase, depth + 1) {
                            return true;
                        }
                    }
                    return false;
                }
                b'?' => {
                    if si >= s.len() {
                        return false;
                    }
                    si += 1;
                }
                b'[' => {
                    if si >= s.len() {
                        return false;
                    }
                    pi += 1;
                    let not = pi < p.len() && p[pi] == b'^';
                    if not {
                        pi += 1;
                    }
                    let mut matched = false;
                    loop {
                        if pi >= p.len() {
                            pi -= 1;
                            break;
                        }
                        if p[pi] == b'\\' && pi + 1 < p.len() {
                            pi += 1;
                            if p[pi] == s[si] {
                                matched = true;
                            }
                        } else if p[pi] == b']' {
                            break;
                        } else if pi + 2 < p.len() && p[pi + 1] == b'-' {
                            let (mut a, mut b) = (lower(p[pi], nocase), lower(p[pi + 2], nocase));
                            if a > b {
                                std::mem::swap(&mut a, &mut b);
                            }
                            let c = lower(s[si], nocase);
                            if c >= a && c <= b {
                                matched = true;
                            }
                            pi += 2;
                        } else if lower(p[pi], nocase) == lower(s[si], nocase) {
                            matched = true;
                        }
                        pi += 1;
                    }
                    if matched == not {
                        return false;
                    }
                    si += 1;
                }
                b'\\' if pi + 1 < p.len() => {
                    pi += 1;
                    if si >= s.len() || lower(p[pi], nocase) != lower(s[si], nocase) {
                        return false;
                    }
                    si += 1;
                }
                c => {
                    if si >= s.len() || lower(c, nocase) != lower(s[si], nocase) {
                        return false;
                    }
                    si += 1;
                }
            }
            pi += 1;
        }
        si == s.len()
    }
    m(pattern, string, nocase, 0)
}

/// Parses a SCAN cursor as Redis' `parseScanCursorOrReply` does (C's
/// `strtoul`: an optional sign, a negative value wraps, an empty string is
/// 0; no leading space, nothing after the digits, no overflow). `None`
/// means "ERR invalid cursor".
pub fn parse_scan_cursor(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return Some(0);
    }
    if matches!(s[0], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Resolves a Redis range `start..=end` with negative indexes counting from
/// the end, clamped to `0..len`. `None` means the range is empty.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if e >= len {
        e = len - 1;
    }
    if s > e || s >= len || len == 0 {
        return None;
    }
    Some((s as usize, e as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b"9223372036854775808"[..], b"01", b"+1", b" 1", b"1 ", b"-0", b"", b"-", b"1a"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"abc"), None);
        assert_eq!(parse_f64(b"1e400"), None);
        assert_eq!(parse_f64(b"1e-400"), None);
        assert_eq!(parse_f64(b"0e5"), Some(0.0));
    }

    #[test]
    fn g17_matches_printf() {
        assert_eq!(format_g17(1.1), "1.1000000000000001");
        assert_eq!(format_g17(1.0), "1");
        assert_eq!(format_g17(-2.5), "-2.5");
        assert_eq!(format_g17(0.0001), "0.0001");
        assert_eq!(format_g17(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_g17(1e17), "1e+17");
        assert_eq!(format_g17(123456789.0), "123456789");
        assert_eq!(format_g17(f64::INFINITY), "inf");
        assert_eq!(format_g17(3.0e-310), "2.9999999999999908e-310");
    }

    #[test]
    fn human_floats() {
        assert_eq!(format_human(10.6), "10.6");
        assert_eq!(format_human(3000.0), "3000");
        assert_eq!(format_human(-0.5), "-0.5");
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"user:*:name", b"user:42:name", false));
        assert!(!glob_match(b"user:*:name", b"user:42:age", false));
        assert!(glob_match(b"h\\*llo", b"h*llo", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(!glob_match(b"a*b", b"a", false));
    }

    #[test]
    fn ranges() {
        assert_eq!(clamp_range(0, -1, 3), Some((0, 2)));
        assert_eq!(clamp_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(clamp_range(2, 1, 3), None);
        assert_eq!(clamp_range(5, 10, 3), None);
        assert_eq!(clamp_range(0, -1, 0), None);
    }
}
