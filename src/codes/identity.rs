//! Identity-number checks (pure): the unified social credit code (USCC, GB 32100-2015) and
//! the resident identity number (GB 11643-1999, ISO 7064 MOD 11-2).

use chrono::NaiveDate;

/// The USCC alphabet: digits and upper-case letters without I, O, Z, S, V (31 symbols; a
/// symbol's value is its index).
pub const USCC_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// The outcome of checking a unified social credit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsccCheck {
    Valid,
    /// Well-formed but the check character differs. A warning, not an error: early pilot
    /// codes were issued with check characters that do not satisfy the standard.
    BadCheckDigit {
        expected: char,
        found: char,
    },
    /// Wrong length or a character outside [`USCC_CHARSET`] (lower case is not accepted;
    /// upper-case the input first if that is wanted).
    Malformed {
        reason: &'static str,
    },
}

fn uscc_value(c: char) -> Option<u32> {
    USCC_CHARSET.chars().position(|x| x == c).map(|p| p as u32)
}

/// The check character for the first 17 characters of a USCC, if they are all in
/// [`USCC_CHARSET`]: weights 3^i mod 31, check = (31 − Σ mod 31) mod 31.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    let mut sum = 0u32;
    let mut weight = 1u32;
    let mut n = 0;
    for c in first17.chars() {
        sum += uscc_value(c)? * weight;
        weight = weight * 3 % 31;
        n += 1;
    }
    if n != 17 {
        return None;
    }
    let check = (31 - sum % 31) % 31;
    USCC_CHARSET.chars().nth(check as usize)
}

/// Check a unified social credit code: 18 characters from [`USCC_CHARSET`], the last a
/// weighted check character.
pub fn check_uscc(s: &str) -> UsccCheck {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() != 18 {
        return UsccCheck::Malformed {
            reason: "a unified social credit code has 18 characters",
        };
    }
    if chars.iter().any(|c| uscc_value(*c).is_none()) {
        return UsccCheck::Malformed {
            reason: "characters outside 0-9 and A-Y without I, O, S, V, Z",
        };
    }
    let first17: String = chars[..17].iter().collect();
    match uscc_check_char(&first17) {
        Some(expected) if expected == chars[17] => UsccCheck::Valid,
        Some(expected) => UsccCheck::BadCheckDigit {
            expected,
            found: chars[17],
        },
        None => UsccCheck::Malformed {
            reason: "characters outside 0-9 and A-Y without I, O, S, V, Z",
        },
    }
}

/// Why a text is not a valid resident identity number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a resident identity number has 18 characters, not {len}")]
    WrongLength { len: usize },
    #[error("character {position} must be a digit{}", if *position == 18 { " or X" } else { "" })]
    BadCharacter { position: usize },
    #[error("characters 7–14 are not a valid birth date")]
    BadBirthDate,
    #[error("check character is {found}, expected {expected}")]
    BadCheckDigit { expected: char, found: char },
}

/// The ISO 7064 MOD 11-2 check character for 17 digits (`X` stands for 10).
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    let mut sum = 0u32;
    let mut n = 0;
    for c in first17.chars() {
        let d = c.to_digit(10)?;
        // Weight of position i (from the left, 0-based) is 2^(17 − i) mod 11.
        let weight = (1u32 << (17 - n.min(17))) % 11;
        sum += d * weight;
        n += 1;
        if n > 17 {
            return None;
        }
    }
    if n != 17 {
        return None;
    }
    let check = (12 - sum % 11) % 11;
    Some(if check == 10 {
        'X'
    } else {
        char::from_digit(check, 10)?
    })
}

/// Check an 18-character resident identity number: 17 digits (the 7th–14th a real date),
/// then the MOD 11-2 check character (a digit or upper-case `X`).
pub fn check_resident_id(s: &str) -> Result<(), IdError> {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() != 18 {
        return Err(IdError::WrongLength { len: chars.len() });
    }
    if let Some(i) = chars[..17].iter().position(|c| !c.is_ascii_digit()) {
        return Err(IdError::BadCharacter { position: i + 1 });
    }
    let last = chars[17];
    if !(last.is_ascii_digit() || last == 'X') {
        return Err(IdError::BadCharacter { position: 18 });
    }
    let digits: String = chars[..17].iter().collect();
    let year: i32 = digits[6..10].parse().map_err(|_| IdError::BadBirthDate)?;
    let month: u32 = digits[10..12].parse().map_err(|_| IdError::BadBirthDate)?;
    let day: u32 = digits[12..14].parse().map_err(|_| IdError::BadBirthDate)?;
    if !(1800..=2999).contains(&year) || NaiveDate::from_ymd_opt(year, month, day).is_none() {
        return Err(IdError::BadBirthDate);
    }
    let expected = resident_id_check_char(&digits).ok_or(IdError::BadCharacter { position: 1 })?;
    if expected != last {
        return Err(IdError::BadCheckDigit {
            expected,
            found: last,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Independent reference: the USCC check from the standard's weight table.
    fn reference_uscc_check(first17: &str) -> char {
        const WEIGHTS: [u32; 17] = [
            1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
        ];
        let cs: Vec<char> = USCC_CHARSET.chars().collect();
        let sum: u32 = first17
            .chars()
            .zip(WEIGHTS)
            .map(|(c, w)| cs.iter().position(|x| *x == c).unwrap() as u32 * w)
            .sum();
        cs[((31 - sum % 31) % 31) as usize]
    }

    /// Independent reference: the resident-ID check from the standard's weight table.
    fn reference_id_check(first17: &str) -> char {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = first17
            .chars()
            .zip(WEIGHTS)
            .map(|(c, w)| c.to_digit(10).unwrap() * w)
            .sum();
        b"10X98765432"[(sum % 11) as usize] as char
    }

    #[test]
    fn uscc_examples() {
        for body in [
            "91350100M000100Y4",
            "91110000802100433",
            "12100000400000624",
        ] {
            let code = format!("{body}{}", reference_uscc_check(body));
            assert_eq!(check_uscc(&code), UsccCheck::Valid, "{code}");
        }
        // Published example from GB 32100 explanations.
        assert_eq!(check_uscc("91350100M000100Y43"), UsccCheck::Valid);
        assert_eq!(
            check_uscc("91350100M000100Y44"),
            UsccCheck::BadCheckDigit {
                expected: '3',
                found: '4'
            }
        );
        assert!(matches!(
            check_uscc("91350100M000100Y4"),
            UsccCheck::Malformed { .. }
        ));
        assert!(matches!(
            check_uscc("91350100M000100I43"),
            UsccCheck::Malformed { .. }
        ));
        assert!(matches!(
            check_uscc("91350100m000100y43"),
            UsccCheck::Malformed { .. }
        ));
        assert!(matches!(
            check_uscc("９1350100M000100Y43"),
            UsccCheck::Malformed { .. }
        ));
        assert!(matches!(check_uscc(""), UsccCheck::Malformed { .. }));
    }

    #[test]
    fn resident_id_examples() {
        // The GB 11643 example, whose check character is X.
        assert_eq!(check_resident_id("11010519491231002X"), Ok(()));
        let body = "44052419800101001";
        let id = format!("{body}{}", reference_id_check(body));
        assert_eq!(check_resident_id(&id), Ok(()));
        assert_eq!(
            check_resident_id("110105194912310021"),
            Err(IdError::BadCheckDigit {
                expected: 'X',
                found: '1'
            })
        );
        assert_eq!(
            check_resident_id("11010519491231002x"),
            Err(IdError::BadCharacter { position: 18 })
        );
        assert_eq!(
            check_resident_id("1101051949123100"),
            Err(IdError::WrongLength { len: 16 })
        );
        assert_eq!(
            check_resident_id("1101051949A231002X"),
            Err(IdError::BadCharacter { position: 11 })
        );
        let bad_date = "11010519490230001";
        let id = format!("{bad_date}{}", reference_id_check(bad_date));
        assert_eq!(check_resident_id(&id), Err(IdError::BadBirthDate));
    }

    fn arb_uscc_body() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::sample::select(USCC_CHARSET.chars().collect::<Vec<_>>()),
            17,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn arb_id_body() -> impl Strategy<Value = String> {
        (
            "[1-6][0-9]{5}",
            1900i32..2020,
            1u32..13,
            1u32..29,
            "[0-9]{3}",
        )
            .prop_map(|(area, y, m, d, seq)| format!("{area}{y:04}{m:02}{d:02}{seq}"))
    }

    proptest! {
        #[test]
        fn uscc_any_single_substitution_is_caught(
            body in arb_uscc_body(),
            pos in 0usize..18,
            replacement in proptest::sample::select(USCC_CHARSET.chars().collect::<Vec<_>>()),
        ) {
            let code = format!("{body}{}", reference_uscc_check(&body));
            prop_assert_eq!(check_uscc(&code), UsccCheck::Valid);
            let mut chars: Vec<char> = code.chars().collect();
            prop_assume!(chars[pos] != replacement);
            chars[pos] = replacement;
            let changed: String = chars.into_iter().collect();
            let is_bad_check = matches!(check_uscc(&changed), UsccCheck::BadCheckDigit { .. });
            prop_assert!(is_bad_check);
        }

        #[test]
        fn resident_id_any_single_substitution_is_caught(
            body in arb_id_body(),
            pos in 0usize..18,
            replacement in proptest::sample::select("0123456789X".chars().collect::<Vec<_>>()),
        ) {
            let id = format!("{body}{}", reference_id_check(&body));
            prop_assert_eq!(check_resident_id(&id), Ok(()));
            let mut chars: Vec<char> = id.chars().collect();
            prop_assume!(chars[pos] != replacement);
            chars[pos] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(check_resident_id(&changed).is_err());
        }

        #[test]
        fn checks_never_panic(s in "\\PC{0,24}") {
            let _ = check_uscc(&s);
            let _ = check_resident_id(&s);
        }
    }
}
