//! Passwords: Argon2id hashes in PHC strings (the parameters of the site file; a hash
//! made with older parameters still verifies), a dummy hash that an unknown login is
//! verified against so its answer takes the time of a known one, and the policy of a new
//! password (length in characters, a file of breached passwords). Hashing is CPU and
//! memory heavy: it runs on the blocking pool, at most as many at once as there are
//! CPUs (each takes `memory_kib`), the rest wait.

use crate::error::{Result, UsersError};
use crate::section::{Argon2Params, PasswordPolicy};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Makes and checks hashes. Cheap to clone.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    dummy: Arc<String>,
    slots: Arc<Semaphore>,
}

impl Hasher {
    /// A hasher with `p` (and a dummy hash made with them).
    pub fn new(p: &Argon2Params) -> Result<Hasher> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None).map_err(|e| UsersError::Hash(e.to_string()))?;
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let mut h = Hasher { params, dummy: Arc::new(String::new()), slots: Arc::new(Semaphore::new(cpus)) };
        h.dummy = Arc::new(h.hash_now("mware-users dummy password, never anyone's")?);
        Ok(h)
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_now(&self, password: &str) -> Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| UsersError::Hash(e.to_string()))
    }

    /// The PHC string of a new hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String> {
        let _slot = self.slots.acquire().await.map_err(|e| UsersError::Hash(e.to_string()))?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.hash_now(&password)).await.map_err(|e| UsersError::Hash(e.to_string()))?
    }

    /// Whether `password` matches `hash`; with no hash (an unknown login, an account
    /// without a password) the dummy is verified instead and the answer is false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        let Ok(_slot) = self.slots.acquire().await else { return false };
        let (me, known) = (self.clone(), hash.is_some());
        let phc = hash.unwrap_or_else(|| self.dummy.to_string());
        let ok = tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                // An unreadable stored hash still costs one verification.
                let _ = PasswordHash::new(&me.dummy).map(|d| me.argon().verify_password(password.as_bytes(), &d));
                return false;
            };
            me.argon().verify_password(password.as_bytes(), &parsed).is_ok()
        })
        .await
        .unwrap_or(false);
        ok && known
    }
}

/// The policy of a new password.
#[derive(Clone, Default)]
pub struct Policy {
    min: usize,
    max: usize,
    breached: Arc<HashSet<String>>,
}

/// Why a new password was refused (never the password itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Fewer characters than the minimum.
    Short(usize),
    /// More characters than the maximum.
    Long(usize),
    /// On the breached list.
    Breached,
    /// Control characters.
    Control,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Short(n) => write!(f, "expected a password of at least {n} characters, found a shorter one"),
            Refused::Long(n) => write!(f, "expected a password of at most {n} characters, found a longer one"),
            Refused::Breached => f.write_str("expected a password not on the list of breached passwords, found one on it"),
            Refused::Control => f.write_str("expected a password without control characters, found some"),
        }
    }
}

impl Policy {
    /// The policy of `p`, reading its breached list (one password a line).
    pub fn load(p: &PasswordPolicy) -> Result<Policy> {
        let breached = match &p.breached_file {
            None => HashSet::new(),
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| UsersError::Setup {
                    what: "users.password_policy.breached_file".into(),
                    expected: format!("a readable text file {f}"),
                    found: e.to_string(),
                })?
                .lines()
                .map(|l| l.trim_end_matches('\r').to_string())
                .filter(|l| !l.is_empty())
                .collect(),
        };
        Ok(Policy { min: p.min_length, max: p.max_length, breached: Arc::new(breached) })
    }

    /// `Ok` when `password` may be set.
    pub fn check(&self, password: &str) -> std::result::Result<(), Refused> {
        let n = password.chars().count();
        if n < self.min {
            return Err(Refused::Short(self.min));
        }
        if n > self.max {
            return Err(Refused::Long(self.max));
        }
        if password.chars().any(char::is_control) {
            return Err(Refused::Control);
        }
        if self.breached.contains(password) {
            return Err(Refused::Breached);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Argon2Params {
        Argon2Params { memory_kib: 8192, iterations: 1, parallelism: 1 }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_is_argon2id() {
        let h = Hasher::new(&small()).unwrap();
        let phc = h.hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{phc}");
        assert!(h.verify("correct horse battery".into(), Some(phc.clone())).await);
        assert!(!h.verify("wrong".into(), Some(phc)).await);
        assert!(!h.verify("anything".into(), None).await, "no hash: the dummy never matches");
        assert!(!h.verify("x".into(), Some("not a phc string".into())).await);
    }

    #[test]
    fn policy_counts_characters_and_reads_the_breached_list() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("breached.txt");
        std::fs::write(&f, "password1234\r\nqwertyuiop12\n").unwrap();
        let p = Policy::load(&PasswordPolicy { min_length: 12, max_length: 20, breached_file: Some(f.display().to_string()) }).unwrap();
        assert_eq!(p.check("short"), Err(Refused::Short(12)));
        assert_eq!(p.check("ёёёёёёёёёёёё"), Ok(()), "12 characters, 24 bytes");
        assert_eq!(p.check(&"a".repeat(21)), Err(Refused::Long(20)));
        assert_eq!(p.check("password1234"), Err(Refused::Breached));
        assert_eq!(p.check("qwertyuiop12"), Err(Refused::Breached));
        assert_eq!(p.check("abcdefghijk\n"), Err(Refused::Control));
    }
}
