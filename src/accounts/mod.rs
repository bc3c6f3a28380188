//! Accounts: roles and the acting identity ([`Actor`]), user records, the username and
//! password rules (workflow rule 9), argon2 password hashing, and login challenge expiry.
//! Registration, login, sessions and user management are in [`service`].

pub mod service;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A login challenge code expires this many seconds after it was issued (rule 9).
pub const CHALLENGE_TTL_SECS: i64 = 30 * 60;

/// The kinds of users of the filing system (DESIGN.md §1 "Actors and roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Miit,
    Bureau,
    PreApproval,
    SpecialContent,
    SpecialQuery,
    Icp,
    Isp,
    IpReporter,
    DomainReporter,
}

/// Who performs an action. Bureau users carry their province; ISP users their provider name;
/// ICP users their username. Written on the command line as `miit`, `bureau:京`,
/// `isp:NAME`, `icp:USERNAME`, `pre-approval`, `special-content`, `special-query`,
/// `ip-reporter:NAME`, `domain-reporter:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    Miit,
    /// A provincial communications administration; the province is a primary abbreviation.
    Bureau {
        province: char,
    },
    PreApproval,
    SpecialContent,
    SpecialQuery,
    /// An access provider. `import_authorised` ISPs may batch-file for their customers.
    Isp {
        name: String,
        import_authorised: bool,
    },
    /// A site owner.
    Icp {
        username: String,
    },
    IpReporter {
        name: String,
    },
    DomainReporter {
        name: String,
    },
}

impl Actor {
    pub fn role(&self) -> Role {
        match self {
            Actor::Miit => Role::Miit,
            Actor::Bureau { .. } => Role::Bureau,
            Actor::PreApproval => Role::PreApproval,
            Actor::SpecialContent => Role::SpecialContent,
            Actor::SpecialQuery => Role::SpecialQuery,
            Actor::Isp { .. } => Role::Isp,
            Actor::Icp { .. } => Role::Icp,
            Actor::IpReporter { .. } => Role::IpReporter,
            Actor::DomainReporter { .. } => Role::DomainReporter,
        }
    }

    /// An import-authorised access provider.
    pub fn isp(name: &str) -> Actor {
        Actor::Isp {
            name: name.to_string(),
            import_authorised: true,
        }
    }

    pub fn bureau(province: char) -> Actor {
        Actor::Bureau {
            province: crate::number::primary_province(province).unwrap_or(province),
        }
    }

    pub fn icp(username: &str) -> Actor {
        Actor::Icp {
            username: username.to_string(),
        }
    }
}

/// Why an actor text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a role (expected miit, bureau:<province>, isp:<name>, icp:<username>, pre-approval, special-content, special-query, ip-reporter:<name>, domain-reporter:<name>): {reason}")]
pub struct ActorParseError {
    pub text: String,
    pub reason: &'static str,
}

impl FromStr for Actor {
    type Err = ActorParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| ActorParseError {
            text: text.to_string(),
            reason,
        };
        let (kind, arg) = match text.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a.trim())),
            None => (text.trim(), None),
        };
        let need = |a: Option<&str>| -> Result<String, ActorParseError> {
            match a {
                Some(a) if !a.is_empty() => Ok(a.to_string()),
                _ => Err(err("this role needs a name after `:`")),
            }
        };
        match kind.to_ascii_lowercase().as_str() {
            "miit" => Ok(Actor::Miit),
            "bureau" => {
                let a = need(arg)?;
                let mut cs = a.chars();
                let c = cs.next().ok_or_else(|| err("missing province"))?;
                let p = crate::number::primary_province(c)
                    .filter(|_| cs.next().is_none())
                    .ok_or_else(|| err("not a province abbreviation"))?;
                Ok(Actor::Bureau { province: p })
            }
            "pre-approval" => Ok(Actor::PreApproval),
            "special-content" => Ok(Actor::SpecialContent),
            "special-query" => Ok(Actor::SpecialQuery),
            "isp" => Ok(Actor::isp(&need(arg)?)),
            "icp" => Ok(Actor::icp(&need(arg)?)),
            "ip-reporter" => Ok(Actor::IpReporter { name: need(arg)? }),
            "domain-reporter" => Ok(Actor::DomainReporter { name: need(arg)? }),
            _ => Err(err("unknown role")),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Miit => f.write_str("miit"),
            Actor::Bureau { province } => write!(f, "bureau:{province}"),
            Actor::PreApproval => f.write_str("pre-approval"),
            Actor::SpecialContent => f.write_str("special-content"),
            Actor::SpecialQuery => f.write_str("special-query"),
            Actor::Isp { name, .. } => write!(f, "isp:{name}"),
            Actor::Icp { username } => write!(f, "icp:{username}"),
            Actor::IpReporter { name } => write!(f, "ip-reporter:{name}"),
            Actor::DomainReporter { name } => write!(f, "domain-reporter:{name}"),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a username or password breaks rule 9.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("username {0:?}: only Chinese characters, letters, digits and `_` are allowed")]
    UsernameCharacters(String),
    #[error("username is empty")]
    UsernameEmpty,
    #[error("password: at least 6 characters")]
    PasswordTooShort,
    #[error("password: must not be all digits")]
    PasswordAllDigits,
    #[error("password: must not equal the username")]
    PasswordIsUsername,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn is_chinese(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Rule 9: Chinese characters, ASCII letters, digits and underscore.
pub fn validate_username(username: &str) -> Result<(), CredentialError> {
    if username.is_empty() {
        return Err(CredentialError::UsernameEmpty);
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || is_chinese(c))
    {
        return Err(CredentialError::UsernameCharacters(username.to_string()));
    }
    Ok(())
}

/// Rule 9: at least 6 characters, not all digits, not equal to the username.
pub fn validate_password(username: &str, password: &str) -> Result<(), CredentialError> {
    if password.chars().count() < 6 {
        return Err(CredentialError::PasswordTooShort);
    }
    if password.chars().all(|c| c.is_ascii_digit()) {
        return Err(CredentialError::PasswordAllDigits);
    }
    if password == username {
        return Err(CredentialError::PasswordIsUsername);
    }
    Ok(())
}

/// Whether a login challenge issued at `issued_at` is still usable at `now` (rule 9).
pub fn challenge_valid(issued_at: i64, now: i64) -> bool {
    now >= issued_at && now - issued_at < CHALLENGE_TTL_SECS
}

/// Hash a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, CredentialError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredentialError::Hash(e.to_string()))
}

/// Check a password against a PHC hash from [`hash_password`].
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(phc) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Generate a password that satisfies rule 9 (letters and digits, 16 characters).
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    let mut p: String = (0..15)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    // Guarantee at least one letter so the password is never all digits.
    p.insert(0, 'k');
    p
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    pub actor: Actor,
    /// argon2 PHC string.
    pub password_hash: String,
    pub created_at: i64,
    /// Who created this user (`registry init` for the first MIIT user).
    pub created_by: String,
}

impl UserRecord {
    /// A new user after checking rule 9.
    pub fn new(
        username: &str,
        password: &str,
        actor: Actor,
        created_by: &str,
        now: i64,
    ) -> Result<Self, CredentialError> {
        validate_username(username)?;
        validate_password(username, password)?;
        Ok(UserRecord {
            username: username.to_string(),
            actor,
            password_hash: hash_password(password)?,
            created_at: now,
            created_by: created_by.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule9_usernames() {
        assert!(validate_username("张三_abc123").is_ok());
        assert!(validate_username("a-b").is_err());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("").is_err());
        assert!(validate_username("user@x").is_err());
    }

    #[test]
    fn rule9_passwords() {
        assert_eq!(
            validate_password("bob", "abc12"),
            Err(CredentialError::PasswordTooShort)
        );
        assert_eq!(
            validate_password("bob", "123456"),
            Err(CredentialError::PasswordAllDigits)
        );
        assert_eq!(
            validate_password("bobbob", "bobbob"),
            Err(CredentialError::PasswordIsUsername)
        );
        assert!(validate_password("bob", "abc123").is_ok());
        let g = generate_password();
        assert!(validate_password("miit", &g).is_ok());
    }

    #[test]
    fn rule9_challenge_expires_after_30_minutes() {
        assert!(challenge_valid(1000, 1000 + 29 * 60));
        assert!(!challenge_valid(1000, 1000 + 30 * 60));
        assert!(!challenge_valid(1000, 999));
    }

    #[test]
    fn hashing_round_trip() {
        let h = hash_password("secret99").unwrap();
        assert!(verify_password("secret99", &h));
        assert!(!verify_password("secret98", &h));
        assert!(!verify_password("secret99", "garbage"));
    }

    #[test]
    fn actor_text_round_trip() {
        for t in [
            "miit",
            "bureau:京",
            "isp:示例接入商",
            "icp:zhang_san",
            "special-query",
        ] {
            let a: Actor = t.parse().unwrap();
            assert_eq!(a.to_string(), t);
        }
        assert_eq!(
            "bureau:陇".parse::<Actor>().unwrap(),
            Actor::Bureau { province: '甘' }
        );
        assert!("bureau:X".parse::<Actor>().is_err());
        assert!("isp:".parse::<Actor>().is_err());
        assert!("root".parse::<Actor>().is_err());
    }
}
