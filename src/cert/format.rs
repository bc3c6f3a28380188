//! The `bazs.cert` text format (version 1): strict parsing, signing and human inspection.
//!
//! ```text
//! beian-cert v1
//! serial: 3
//! subject_number: 京ICP备12345678号
//! service_number: 京ICP备12345678号-1
//! subject_name: 示例科技有限公司
//! domain: example.com
//! domain: example.cn
//! issued_at: 2024-03-01T08:00:00Z
//! expires_at: 2025-03-01T08:00:00Z
//! key_id: ed25519:3f9a2c0b7d1e4a55
//! signature: <base64 of the 64-byte ed25519 signature>
//! ```
//!
//! Lines end in `\n` only. The payload is every byte before the `signature:` line; the
//! signature covers [`SIGNATURE_DOMAIN`] followed by those exact bytes. Every field is
//! required, appears once (`domain` once per domain, at least once) and in the order above,
//! and must be in canonical form, so one payload has exactly one encoding.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};

use super::{CertPayload, Certificate, MAX_CERT_BYTES};
use crate::domain::Domain;
use crate::number::FilingNumber;

/// The first line of a version-1 certificate.
pub const HEADER_V1: &str = "beian-cert v1";
/// Domain-separation prefix of the signed message.
pub const SIGNATURE_DOMAIN: &[u8] = b"beian-cert-v1\0";
/// Longest subject name accepted, in characters.
pub const MAX_SUBJECT_NAME_CHARS: usize = 256;
/// Longest key id accepted, in bytes.
pub const MAX_KEY_ID_LEN: usize = 64;

const VERSION_PREFIX: &str = "beian-cert v";
const SIGNATURE_PREFIX: &str = "signature: ";
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// The payload fields, in the order they must appear.
const FIELDS: [&str; 8] = [
    "serial",
    "subject_number",
    "service_number",
    "subject_name",
    "domain",
    "issued_at",
    "expires_at",
    "key_id",
];
const DOMAIN_FIELD: usize = 4;

/// Why bytes are not a certificate, or a payload cannot be signed. Lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate is {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("certificate is empty")]
    Empty,
    #[error("line {line}: not valid UTF-8")]
    NotUtf8 { line: usize },
    #[error("line {line}: control character U+{code:04X} (lines end in LF only)")]
    ControlCharacter { line: usize, code: u32 },
    #[error("line {line}: not a beian certificate (expected `{HEADER_V1}`)")]
    NotACertificate { line: usize },
    #[error("line {line}: unsupported certificate version {version:?}")]
    UnsupportedVersion { line: usize, version: String },
    #[error("line {line}: expected `field: value`")]
    BadLine { line: usize },
    #[error("line {line}: unknown field `{field}`")]
    UnknownField { line: usize, field: String },
    #[error("line {line}: field `{field}` appears more than once")]
    DuplicateField { line: usize, field: &'static str },
    #[error("line {line}: field `{field}` is out of order (expected `{expected}`)")]
    OutOfOrder {
        line: usize,
        field: &'static str,
        expected: &'static str,
    },
    #[error("line {line}: field `{field}` is missing")]
    MissingField { line: usize, field: &'static str },
    #[error("line {line}: field `{field}`: {reason}")]
    BadValue {
        line: usize,
        field: &'static str,
        reason: String,
    },
    #[error("line {line}: no `signature:` line")]
    MissingSignature { line: usize },
    #[error("line {line}: field `signature`: {reason}")]
    BadSignatureEncoding { line: usize, reason: String },
    #[error("line {line}: the file does not end with a line feed")]
    MissingFinalNewline { line: usize },
    #[error("line {line}: data after the signature")]
    TrailingData { line: usize },
    #[error("cannot sign: field `{field}`: {reason}")]
    InvalidPayload { field: &'static str, reason: String },
}

/// The message the signature covers: the domain prefix followed by the payload bytes.
pub fn signed_message(payload_bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_DOMAIN.len() + payload_bytes.len());
    m.extend_from_slice(SIGNATURE_DOMAIN);
    m.extend_from_slice(payload_bytes);
    m
}

/// Parse a certificate file. Strict: see the module documentation.
pub fn parse(bytes: &[u8]) -> Result<Certificate, CertError> {
    let parsed = parse_borrowed(bytes)?;
    Ok(Certificate {
        payload: parsed.payload,
        payload_bytes: parsed.payload_bytes.to_vec(),
        signature: parsed.signature,
    })
}

/// A parsed certificate whose payload bytes are borrowed from the file.
pub(super) struct Parsed<'a> {
    pub payload: CertPayload,
    pub payload_bytes: &'a [u8],
    pub signature: [u8; 64],
}

/// [`parse`] without copying the payload bytes (verification reads them in place).
pub(super) fn parse_borrowed(bytes: &[u8]) -> Result<Parsed<'_>, CertError> {
    if bytes.len() > MAX_CERT_BYTES {
        return Err(CertError::TooLarge {
            len: bytes.len(),
            max: MAX_CERT_BYTES,
        });
    }
    if bytes.is_empty() {
        return Err(CertError::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| CertError::NotUtf8 {
        line: line_at(bytes, e.valid_up_to()),
    })?;

    // Lines are checked one by one for control characters (to name the first line with
    // one) only when the text has one besides its line feeds.
    let controls = has_control(text);
    let mut lines = Lines::new(text);
    let (line_no, _, header) = lines.next().ok_or(CertError::Empty)?;
    if controls {
        check_controls(line_no, header)?;
    }
    if header != HEADER_V1 {
        return Err(match header.strip_prefix(VERSION_PREFIX) {
            Some(v) => CertError::UnsupportedVersion {
                line: line_no,
                version: v.to_string(),
            },
            None => CertError::NotACertificate { line: line_no },
        });
    }

    let mut fields = FieldValues::default();
    let mut last: Option<usize> = None;
    let mut signature_line = None;
    let mut last_line = line_no;
    for (line_no, start, line) in lines.by_ref() {
        last_line = line_no;
        if controls {
            check_controls(line_no, line)?;
        }
        if let Some(encoded) = line.strip_prefix(SIGNATURE_PREFIX) {
            signature_line = Some((line_no, start, encoded));
            break;
        }
        let (name, value) = split_field(line).ok_or(CertError::BadLine { line: line_no })?;
        let Some(pos) = FIELDS.iter().position(|f| *f == name) else {
            return Err(CertError::UnknownField {
                line: line_no,
                field: name.chars().take(64).collect(),
            });
        };
        let field = FIELDS[pos];
        let next = last.map_or(0, |l| l + 1);
        match last {
            Some(l) if pos == l && pos == DOMAIN_FIELD => {}
            Some(l) if pos <= l => {
                return Err(if fields.seen(pos) {
                    CertError::DuplicateField {
                        line: line_no,
                        field,
                    }
                } else {
                    CertError::OutOfOrder {
                        line: line_no,
                        field,
                        expected: FIELDS.get(next).copied().unwrap_or("signature"),
                    }
                });
            }
            _ if pos > next => {
                return Err(CertError::MissingField {
                    line: line_no,
                    field: FIELDS[next],
                })
            }
            _ => {}
        }
        last = Some(pos);
        fields.set(pos, line_no, field, value)?;
    }

    let Some((sig_line, sig_start, encoded)) = signature_line else {
        return Err(CertError::MissingSignature { line: last_line });
    };
    if last != Some(FIELDS.len() - 1) {
        return Err(CertError::MissingField {
            line: sig_line,
            field: FIELDS[last.map_or(0, |l| l + 1)],
        });
    }
    if !lines.ended_with_newline() {
        return Err(CertError::MissingFinalNewline { line: sig_line });
    }
    if let Some((line, _, _)) = lines.next() {
        return Err(CertError::TrailingData { line });
    }
    let signature = decode_signature(sig_line, encoded)?;
    let payload = fields.into_payload(sig_line)?;
    Ok(Parsed {
        payload,
        payload_bytes: &bytes[..sig_start],
        signature,
    })
}

/// Produce the certificate file for `payload`, signed by `key` (`payload.key_id` must name
/// it in the keyring verifiers use). Refuses a payload that would not read back as itself:
/// non-canonical numbers or domains, control characters or surrounding whitespace in the
/// subject name, times outside years 0000–9999, an oversize result.
pub fn sign(payload: &CertPayload, key: &SigningKey) -> Result<Vec<u8>, CertError> {
    if payload.version != 1 {
        return Err(CertError::InvalidPayload {
            field: "version",
            reason: format!("only version 1 is supported, not {}", payload.version),
        });
    }
    let issued = format_time(payload.issued_at).ok_or_else(|| CertError::InvalidPayload {
        field: "issued_at",
        reason: "outside the representable range".into(),
    })?;
    let expires = format_time(payload.expires_at).ok_or_else(|| CertError::InvalidPayload {
        field: "expires_at",
        reason: "outside the representable range".into(),
    })?;
    let mut body = String::with_capacity(512);
    body.push_str(HEADER_V1);
    body.push('\n');
    let mut push = |name: &str, value: &str| {
        body.push_str(name);
        body.push_str(": ");
        body.push_str(value);
        body.push('\n');
    };
    push("serial", &payload.serial.to_string());
    push("subject_number", &payload.subject_number.to_string());
    push("service_number", &payload.service_number.to_string());
    push("subject_name", &payload.subject_name);
    for d in &payload.domains {
        push("domain", d);
    }
    push("issued_at", &issued);
    push("expires_at", &expires);
    push("key_id", &payload.key_id);

    let signature = key.sign(&signed_message(body.as_bytes()));
    let mut out = body.into_bytes();
    out.extend_from_slice(SIGNATURE_PREFIX.as_bytes());
    out.extend_from_slice(BASE64.encode(signature.to_bytes()).as_bytes());
    out.push(b'\n');

    // The output must read back as exactly this payload (this also catches text in a field
    // that would forge extra lines).
    let parsed = parse(&out).map_err(|e| CertError::InvalidPayload {
        field: "payload",
        reason: e.to_string(),
    })?;
    if parsed.payload != *payload {
        return Err(CertError::InvalidPayload {
            field: "payload",
            reason: "a field does not read back as itself (non-canonical or embedded line break)"
                .into(),
        });
    }
    Ok(out)
}

/// Human-readable description of a certificate (for `beian cert inspect`). Says nothing
/// about validity: that needs [`super::verify`] with a pinned keyring.
pub fn inspect(cert: &Certificate) -> String {
    let p = &cert.payload;
    let time = |t: i64| format_time(t).unwrap_or_else(|| format!("unix {t}"));
    let mut s = String::new();
    s.push_str(&format!("beian certificate, format v{}\n", p.version));
    s.push_str(&format!("  serial:          {}\n", p.serial));
    s.push_str(&format!("  subject number:  {}\n", p.subject_number));
    s.push_str(&format!("  service number:  {}\n", p.service_number));
    s.push_str(&format!(
        "  subject name:    {}\n",
        p.subject_name.escape_debug()
    ));
    for (i, d) in p.domains.iter().enumerate() {
        let label = if i == 0 { "domains:" } else { "" };
        let shown = match idna::domain_to_unicode(d) {
            (u, Ok(())) if u != *d => format!("{d} ({u})"),
            _ => d.clone(),
        };
        s.push_str(&format!("  {label:<16} {shown}\n"));
    }
    s.push_str(&format!(
        "  issued at:       {} (unix {})\n",
        time(p.issued_at),
        p.issued_at
    ));
    s.push_str(&format!(
        "  expires at:      {} (unix {}; annual review)\n",
        time(p.expires_at),
        p.expires_at
    ));
    s.push_str(&format!("  signing key:     {}\n", p.key_id));
    s.push_str(&format!(
        "  signature:       ed25519 {}\n",
        hex::encode(cert.signature)
    ));
    s.push_str(&format!(
        "  payload:         {} bytes (signature not checked here; use `beian cert verify`)\n",
        cert.payload_bytes.len()
    ));
    s
}

fn format_time(t: i64) -> Option<String> {
    let dt = DateTime::<Utc>::from_timestamp(t, 0)?;
    let s = dt.format(TIME_FORMAT).to_string();
    // Only years 0000–9999 have a 4-digit RFC 3339 form.
    (s.len() == 20).then_some(s)
}

fn parse_time(line: usize, field: &'static str, v: &str) -> Result<i64, CertError> {
    match parse_time_fast(v) {
        Some(t) => Ok(t),
        None => parse_time_general(line, field, v),
    }
}

/// The canonical form `YYYY-MM-DDTHH:MM:SSZ` read by hand: `Some(t)` exactly when
/// [`parse_time_general`] gives `Ok(t)` (a property test holds them equal); `None` sends
/// the text there for its verdict.
fn parse_time_fast(v: &str) -> Option<i64> {
    let b: &[u8; 20] = v.as_bytes().try_into().ok()?;
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b'Z' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (any year; month 1–12, day valid).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March, so the leap day ends a year; 400-year eras of 146 097 days.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn parse_time_general(line: usize, field: &'static str, v: &str) -> Result<i64, CertError> {
    let bad = |reason: &str| CertError::BadValue {
        line,
        field,
        reason: reason.to_string(),
    };
    let dt = DateTime::parse_from_rfc3339(v).map_err(|_| bad("not an RFC 3339 time"))?;
    let t = dt.timestamp();
    if format_time(t).as_deref() != Some(v) {
        return Err(bad(
            "not in the form YYYY-MM-DDTHH:MM:SSZ (UTC, whole seconds)",
        ));
    }
    Ok(t)
}

fn decode_signature(line: usize, encoded: &str) -> Result<[u8; 64], CertError> {
    match decode_signature_fast(encoded) {
        Some(sig) => Ok(sig),
        None => decode_signature_general(line, encoded),
    }
}

/// Base64 of 64 bytes is 88 characters; decoded and re-encoded on the stack. `Some` exactly
/// when [`decode_signature_general`] accepts (a property test holds them equal).
fn decode_signature_fast(encoded: &str) -> Option<[u8; 64]> {
    if encoded.len() != 88 {
        return None;
    }
    // Room for what 88 characters can decode to, so only bad input fails.
    let mut raw = [0u8; 66];
    let n = BASE64.decode_slice(encoded, &mut raw).ok()?;
    let sig: [u8; 64] = raw.get(..n)?.try_into().ok()?;
    let mut again = [0u8; 88];
    let m = BASE64.encode_slice(sig, &mut again).ok()?;
    (again.get(..m)? == encoded.as_bytes()).then_some(sig)
}

fn decode_signature_general(line: usize, encoded: &str) -> Result<[u8; 64], CertError> {
    let bad = |reason: &str| CertError::BadSignatureEncoding {
        line,
        reason: reason.to_string(),
    };
    let raw = BASE64
        .decode(encoded)
        .map_err(|e| bad(&format!("not base64: {e}")))?;
    let sig: [u8; 64] = raw
        .as_slice()
        .try_into()
        .map_err(|_| bad(&format!("{} bytes, expected 64", raw.len())))?;
    if BASE64.encode(sig) != encoded {
        return Err(bad("not canonical base64"));
    }
    Ok(sig)
}

/// Line number (from 1) of byte offset `at`.
fn line_at(bytes: &[u8], at: usize) -> usize {
    bytes[..at.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// `line.split_once(": ")`, looking for the colon byte by byte.
fn split_field(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let at = (0..b.len().saturating_sub(1)).find(|&i| b[i] == b':' && b[i + 1] == b' ')?;
    // `at` and `at + 2` are next to ASCII bytes, so on character boundaries.
    Some((line.get(..at)?, line.get(at + 2..)?))
}

/// Whether `text` has a control character other than `\n` (general category Cc: U+0000–
/// U+001F, U+007F–U+009F). A branch-free pass over the bytes rules out most text: in UTF-8
/// the Cc characters above ASCII are `C2 80`–`C2 9F`, and `C2` also starts U+00A0–U+00BF, so
/// text with a `C2` byte is looked at character by character.
fn has_control(text: &str) -> bool {
    let suspect = text.as_bytes().iter().fold(false, |acc, &c| {
        acc | ((c < 0x20) & (c != b'\n')) | (c == 0x7f) | (c == 0xc2)
    });
    suspect && text.chars().any(|c| c.is_control() && c != '\n')
}

fn check_controls(line: usize, text: &str) -> Result<(), CertError> {
    if !has_control(text) {
        return Ok(());
    }
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(CertError::ControlCharacter {
            line,
            code: c as u32,
        }),
        None => Ok(()),
    }
}

/// Valid key id: 1–64 bytes of ASCII letters, digits and `.:_-`.
pub(crate) fn check_key_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
        return Err("a key id has 1–64 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'_' | b'-'))
    {
        return Err("a key id has only ASCII letters, digits and `.:_-`");
    }
    Ok(())
}

/// `\n`-separated lines with their number and byte offset.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            text,
            pos: 0,
            line: 0,
        }
    }

    /// Whether the last line returned was terminated by `\n`.
    fn ended_with_newline(&self) -> bool {
        self.pos > 0 && self.text.as_bytes()[self.pos - 1] == b'\n'
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, usize, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (line, advance) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        self.line += 1;
        Some((self.line, start, line))
    }
}

#[derive(Default)]
struct FieldValues {
    serial: Option<u64>,
    subject_number: Option<FilingNumber>,
    service_number: Option<FilingNumber>,
    subject_name: Option<String>,
    domains: Vec<String>,
    issued_at: Option<i64>,
    expires_at: Option<(usize, i64)>,
    key_id: Option<String>,
}

impl FieldValues {
    fn seen(&self, pos: usize) -> bool {
        match pos {
            0 => self.serial.is_some(),
            1 => self.subject_number.is_some(),
            2 => self.service_number.is_some(),
            3 => self.subject_name.is_some(),
            4 => !self.domains.is_empty(),
            5 => self.issued_at.is_some(),
            6 => self.expires_at.is_some(),
            _ => self.key_id.is_some(),
        }
    }

    fn set(
        &mut self,
        pos: usize,
        line: usize,
        field: &'static str,
        v: &str,
    ) -> Result<(), CertError> {
        let bad = |reason: String| CertError::BadValue {
            line,
            field,
            reason,
        };
        match pos {
            0 => {
                let canonical = !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_digit())
                    && (v == "0" || !v.starts_with('0'));
                if !canonical {
                    return Err(bad("not a decimal number without leading zeros".into()));
                }
                self.serial = Some(v.parse().map_err(|_| bad("too large".into()))?);
            }
            1 | 2 => {
                // Canonical text (every certificate `sign` writes) is read directly; anything
                // else goes through the general reading for its error.
                let n = match FilingNumber::parse_canonical(v) {
                    Some(n) => n,
                    None => {
                        let n = FilingNumber::parse(v).map_err(|e| bad(e.to_string()))?;
                        if n.to_string() != v {
                            return Err(bad(format!("not in canonical form (expected {n})")));
                        }
                        n
                    }
                };
                if pos == 1 {
                    if !n.is_subject() {
                        return Err(bad("a subject number has no service suffix".into()));
                    }
                    self.subject_number = Some(n);
                } else {
                    if n.is_subject() {
                        return Err(bad("a service number has a suffix such as -1".into()));
                    }
                    if !self
                        .subject_number
                        .as_ref()
                        .is_some_and(|s| n.is_service_of(s))
                    {
                        return Err(bad("not a service of the subject number".into()));
                    }
                    self.service_number = Some(n);
                }
            }
            3 => {
                if v.is_empty() || v.trim() != v {
                    return Err(bad("empty or surrounded by whitespace".into()));
                }
                if v.chars().count() > MAX_SUBJECT_NAME_CHARS {
                    return Err(bad(format!(
                        "longer than {MAX_SUBJECT_NAME_CHARS} characters"
                    )));
                }
                self.subject_name = Some(v.to_string());
            }
            4 => {
                let d = Domain::parse(v).map_err(|e| bad(e.to_string()))?;
                if d.as_str() != v {
                    return Err(bad(format!("not in canonical form (expected {d})")));
                }
                if self.domains.iter().any(|x| x == v) {
                    return Err(bad(format!("{v} is listed twice")));
                }
                self.domains.push(d.into_string());
            }
            5 => self.issued_at = Some(parse_time(line, field, v)?),
            6 => {
                let t = parse_time(line, field, v)?;
                if self.issued_at.is_some_and(|i| t < i) {
                    return Err(bad("before issued_at".into()));
                }
                self.expires_at = Some((line, t));
            }
            _ => {
                check_key_id(v).map_err(|r| bad(r.into()))?;
                self.key_id = Some(v.to_string());
            }
        }
        Ok(())
    }

    fn into_payload(self, line: usize) -> Result<CertPayload, CertError> {
        // Every field was checked present by the ordering rules; stay total anyway.
        let missing = |field| CertError::MissingField { line, field };
        Ok(CertPayload {
            version: 1,
            serial: self.serial.ok_or_else(|| missing("serial"))?,
            subject_number: self
                .subject_number
                .ok_or_else(|| missing("subject_number"))?,
            service_number: self
                .service_number
                .ok_or_else(|| missing("service_number"))?,
            subject_name: self.subject_name.ok_or_else(|| missing("subject_name"))?,
            domains: if self.domains.is_empty() {
                return Err(missing("domain"));
            } else {
                self.domains
            },
            issued_at: self.issued_at.ok_or_else(|| missing("issued_at"))?,
            expires_at: self.expires_at.ok_or_else(|| missing("expires_at"))?.1,
            key_id: self.key_id.ok_or_else(|| missing("key_id"))?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample_payload(key_id: &str) -> CertPayload {
        let subject = FilingNumber::parse("京ICP备12345678号").unwrap();
        CertPayload {
            version: 1,
            serial: 3,
            service_number: subject.with_service(1, crate::number::ServiceKind::Website),
            subject_number: subject,
            subject_name: "示例科技有限公司".into(),
            domains: vec!["example.com".into(), "example.cn".into()],
            issued_at: 1_709_280_000,  // 2024-03-01T08:00:00Z
            expires_at: 1_740_816_000, // 2025-03-01T08:00:00Z
            key_id: key_id.into(),
        }
    }

    pub(crate) fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn sample_text() -> String {
        String::from_utf8(sign(&sample_payload("k1"), &key(1)).unwrap()).unwrap()
    }

    /// Replace line `n` (from 1) of the sample's text.
    fn with_line(n: usize, new: &str) -> Vec<u8> {
        let text = sample_text();
        let mut lines: Vec<&str> = text.split('\n').collect();
        lines[n - 1] = new;
        lines.join("\n").into_bytes()
    }

    #[test]
    fn sign_then_parse_round_trips_the_exact_layout() {
        let bytes = sign(&sample_payload("k1"), &key(1)).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        let expected_head = "beian-cert v1\nserial: 3\nsubject_number: 京ICP备12345678号\n\
            service_number: 京ICP备12345678号-1\nsubject_name: 示例科技有限公司\n\
            domain: example.com\ndomain: example.cn\nissued_at: 2024-03-01T08:00:00Z\n\
            expires_at: 2025-03-01T08:00:00Z\nkey_id: k1\n";
        assert!(text.starts_with(expected_head), "{text}");
        assert!(text.ends_with("==\n"));
        let cert = parse(&bytes).unwrap();
        assert_eq!(cert.payload, sample_payload("k1"));
        assert_eq!(cert.payload_bytes, expected_head.as_bytes());
        let vk = key(1).verifying_key();
        let sig = ed25519_dalek::Signature::from_bytes(&cert.signature);
        vk.verify_strict(&signed_message(&cert.payload_bytes), &sig)
            .unwrap();
        // Without the domain prefix the signature does not verify.
        assert!(vk.verify_strict(&cert.payload_bytes, &sig).is_err());
    }

    #[test]
    fn rejects_size_encoding_and_version_problems() {
        let big = vec![b'a'; MAX_CERT_BYTES + 1];
        assert!(matches!(parse(&big), Err(CertError::TooLarge { .. })));
        assert_eq!(parse(b""), Err(CertError::Empty));
        let mut bytes = sample_text().into_bytes();
        bytes[40] = 0xff;
        assert!(matches!(parse(&bytes), Err(CertError::NotUtf8 { line: 3 })));
        assert_eq!(
            parse(&with_line(1, "beian-cert v2")),
            Err(CertError::UnsupportedVersion {
                line: 1,
                version: "2".into()
            })
        );
        assert_eq!(
            parse(&with_line(1, "hello")),
            Err(CertError::NotACertificate { line: 1 })
        );
        let bom = format!("\u{feff}{}", sample_text());
        assert!(parse(bom.as_bytes()).is_err());
    }

    #[test]
    fn rejects_line_ending_tricks() {
        let crlf = sample_text().replace('\n', "\r\n");
        assert_eq!(
            parse(crlf.as_bytes()),
            Err(CertError::ControlCharacter { line: 1, code: 13 })
        );
        let text = sample_text();
        let no_final = text.trim_end_matches('\n');
        assert!(matches!(
            parse(no_final.as_bytes()),
            Err(CertError::MissingFinalNewline { line: 11 })
        ));
        let trailing = format!("{text}\n");
        assert_eq!(
            parse(trailing.as_bytes()),
            Err(CertError::TrailingData { line: 12 })
        );
        let garbage = format!("{text}x");
        assert_eq!(
            parse(garbage.as_bytes()),
            Err(CertError::TrailingData { line: 12 })
        );
        let cr_in_name = with_line(5, "subject_name: 示例\r科技");
        assert_eq!(
            parse(&cr_in_name),
            Err(CertError::ControlCharacter { line: 5, code: 13 })
        );
    }

    #[test]
    fn rejects_missing_duplicate_unknown_and_reordered_fields() {
        assert_eq!(
            parse(&with_line(3, "issuer: someone")),
            Err(CertError::UnknownField {
                line: 3,
                field: "issuer".into()
            })
        );
        assert_eq!(
            parse(&with_line(3, "serial: 4")),
            Err(CertError::DuplicateField {
                line: 3,
                field: "serial"
            })
        );
        assert_eq!(
            parse(&with_line(3, "subject_number 京ICP备12345678号")),
            Err(CertError::BadLine { line: 3 })
        );
        assert_eq!(
            parse(&with_line(3, "service_number: 京ICP备12345678号-1")),
            Err(CertError::MissingField {
                line: 3,
                field: "subject_number"
            })
        );
        // Domain lines must be contiguous.
        assert_eq!(
            parse(&with_line(9, "domain: example.org")),
            Err(CertError::DuplicateField {
                line: 9,
                field: "domain"
            })
        );
        // Drop the key_id line: the signature line finds it missing.
        let text = sample_text().replace("key_id: k1\n", "");
        assert_eq!(
            parse(text.as_bytes()),
            Err(CertError::MissingField {
                line: 10,
                field: "key_id"
            })
        );
        let text = sample_text();
        let no_sig = &text[..text.find("signature").unwrap()];
        assert_eq!(
            parse(no_sig.as_bytes()),
            Err(CertError::MissingSignature { line: 10 })
        );
    }

    #[test]
    fn rejects_bad_values() {
        let cases: &[(usize, &str, &str)] = &[
            (2, "serial: 03", "serial"),
            (2, "serial: -3", "serial"),
            (2, "serial: 99999999999999999999", "serial"),
            (2, "serial: ", "serial"),
            (3, "subject_number: 京ICP备１２345678号", "subject_number"),
            (3, "subject_number: 京ICP备12345678号-1", "subject_number"),
            (4, "service_number: 京ICP备12345678号", "service_number"),
            (4, "service_number: 京ICP备87654321号-1", "service_number"),
            (5, "subject_name:  padded", "subject_name"),
            (6, "domain: www.example.com", "domain"),
            (6, "domain: Example.com", "domain"),
            (6, "domain: com.cn", "domain"),
            (7, "domain: example.com", "domain"),
            (8, "issued_at: 2024-03-01T08:00:00+08:00", "issued_at"),
            (8, "issued_at: 2024-03-01T08:00:00.5Z", "issued_at"),
            (8, "issued_at: 2024-03-01", "issued_at"),
            (9, "expires_at: 2020-03-01T08:00:00Z", "expires_at"),
            (10, "key_id: k 1", "key_id"),
        ];
        for (line, text, field) in cases {
            match parse(&with_line(*line, text)) {
                Err(CertError::BadValue {
                    line: l, field: f, ..
                }) => {
                    assert_eq!((l, f), (*line, *field), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let text = sample_text();
        let sig_line = text.lines().last().unwrap();
        let short = text.replace(sig_line, "signature: AAAA");
        assert!(matches!(
            parse(short.as_bytes()),
            Err(CertError::BadSignatureEncoding { line: 11, .. })
        ));
        let unpadded = text.replace(sig_line, sig_line.trim_end_matches('='));
        assert!(matches!(
            parse(unpadded.as_bytes()),
            Err(CertError::BadSignatureEncoding { line: 11, .. })
        ));
    }

    #[test]
    fn sign_refuses_payloads_that_would_not_read_back() {
        let k = key(1);
        let mut p = sample_payload("k1");
        p.subject_name = "A\ndomain: evil.com".into();
        assert!(matches!(
            sign(&p, &k),
            Err(CertError::InvalidPayload { .. })
        ));
        let mut p = sample_payload("k1");
        p.domains = vec!["WWW.example.com".into()];
        assert!(sign(&p, &k).is_err());
        let mut p = sample_payload("k1");
        p.domains.clear();
        assert!(sign(&p, &k).is_err());
        let mut p = sample_payload("k1");
        p.expires_at = i64::MAX;
        assert!(sign(&p, &k).is_err());
        let mut p = sample_payload("k1");
        p.version = 2;
        assert!(sign(&p, &k).is_err());
        let mut p = sample_payload("k1");
        p.key_id = "k1\nx".into();
        assert!(sign(&p, &k).is_err());
        let mut p = sample_payload("k1");
        p.subject_name = "名".repeat(MAX_SUBJECT_NAME_CHARS + 1);
        assert!(sign(&p, &k).is_err());
    }

    #[test]
    fn inspect_shows_every_field() {
        let mut p = sample_payload("k1");
        p.domains.push("xn--fsq092h.xn--fiqs8s".into());
        let cert = parse(&sign(&p, &key(1)).unwrap()).unwrap();
        let s = inspect(&cert);
        for needle in [
            "serial:          3",
            "京ICP备12345678号-1",
            "示例科技有限公司",
            "example.cn",
            "xn--fsq092h.xn--fiqs8s (示例.中国)",
            "2024-03-01T08:00:00Z",
            "2025-03-01T08:00:00Z",
            "signing key:     k1",
        ] {
            assert!(s.contains(needle), "{needle} missing from\n{s}");
        }
    }

    fn arb_name() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            any::<char>().prop_filter("no control", |c| !c.is_control()),
            1..40,
        )
        .prop_map(|cs| cs.into_iter().collect::<String>().trim().to_string())
        .prop_filter("non-empty", |s| !s.is_empty())
    }

    fn arb_payload() -> impl Strategy<Value = CertPayload> {
        let provinces: Vec<char> = crate::number::PROVINCES
            .iter()
            .map(|(c, _)| *c)
            .chain(crate::number::ALT_PROVINCES.iter().map(|(c, _)| *c))
            .collect();
        (
            proptest::sample::select(provinces),
            "[0-9]{6,10}",
            1u32..200,
            prop_oneof![
                Just(crate::number::ServiceKind::Website),
                Just(crate::number::ServiceKind::App),
                Just(crate::number::ServiceKind::MiniProgram)
            ],
            any::<u64>(),
            arb_name(),
            // Only registrable domains: some generated names are public suffixes (`hu.net`).
            proptest::collection::btree_set(
                "[a-z0-9]{1,12}\\.(com|cn|com\\.cn|org|net)"
                    .prop_filter("registrable", |d| crate::domain::Domain::parse(d).is_ok()),
                1..6,
            ),
            0i64..4_000_000_000,
            0i64..400_000_000,
            "[A-Za-z0-9:._-]{1,64}",
        )
            .prop_map(
                |(prov, digits, idx, kind, serial, name, domains, issued, life, key_id)| {
                    let subject = FilingNumber {
                        province: prov,
                        digits,
                        suffix: None,
                    };
                    CertPayload {
                        version: 1,
                        serial,
                        service_number: subject.with_service(idx, kind),
                        subject_number: subject,
                        subject_name: name,
                        domains: domains.into_iter().collect(),
                        issued_at: issued,
                        expires_at: issued + life,
                        key_id,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_certificates(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
        ) {
            let mut bytes = sample_text().into_bytes();
            for (i, b) in edits {
                let at = i.index(bytes.len());
                bytes[at] = b;
            }
            let _ = parse(&bytes);
        }

        /// The hand-read canonical time equals chrono's reading and the canonical check, on
        /// text near the form (any digits, other separators, offsets, fractions).
        #[test]
        fn time_fast_path_equals_general_path(
            text in "[0-9]{4}[-/][0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(Z|z|\\.5Z|\\+08:00|\\+00:00)?"
        ) {
            prop_assert_eq!(
                parse_time_fast(&text),
                parse_time_general(1, "issued_at", &text).ok()
            );
        }

        /// Every representable second (years 0000–9999) reads back through the fast path.
        #[test]
        fn time_fast_path_reads_every_formatted_time(t in -62_167_219_200i64..253_402_300_800) {
            let text = format_time(t).unwrap();
            prop_assert_eq!(parse_time_fast(&text), Some(t));
            prop_assert_eq!(parse_time_general(1, "issued_at", &text), Ok(t));
        }

        /// The stack decoding of the signature equals the general decoding: on every
        /// signature's encoding, and on arbitrary text of the alphabet.
        #[test]
        fn signature_fast_path_equals_general_path(
            sig in proptest::collection::vec(any::<u8>(), 64),
            text in "[A-Za-z0-9+/=_-]{86,90}",
        ) {
            let encoded = BASE64.encode(&sig);
            prop_assert_eq!(
                decode_signature_fast(&encoded),
                decode_signature_general(1, &encoded).ok()
            );
            prop_assert!(decode_signature_fast(&encoded).is_some());
            prop_assert_eq!(
                decode_signature_fast(&text),
                decode_signature_general(1, &text).ok()
            );
            // One changed character of a good encoding (trailing bits, padding, alphabet).
            let mut bytes = encoded.clone().into_bytes();
            let at = sig[0] as usize % bytes.len();
            bytes[at] = text.as_bytes()[0];
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(
                decode_signature_fast(&changed),
                decode_signature_general(1, &changed).ok()
            );
        }

        /// The byte-wise line checks equal their character-wise definitions.
        #[test]
        fn byte_checks_equal_char_checks(
            text in "(\\PC|[\u{0}-\u{1f}\u{7f}-\u{a0}\u{bf}\u{100}:: \n]){0,40}"
        ) {
            prop_assert_eq!(
                has_control(&text),
                text.chars().any(|c| c.is_control() && c != '\n')
            );
            prop_assert_eq!(split_field(&text), text.split_once(": "));
        }

        #[test]
        fn sign_parse_round_trips(p in arb_payload()) {
            let bytes = sign(&p, &key(9)).unwrap();
            let cert = parse(&bytes).unwrap();
            prop_assert_eq!(&cert.payload, &p);
            prop_assert!(bytes.starts_with(&cert.payload_bytes));
        }
    }
}
