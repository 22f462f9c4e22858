//! API keys and roles.
//!
//! Why a key file with roles: the decision service, fulfilment systems and
//! planners call different routes and must not be able to call each other's
//! (a decision client must not activate plans). Keys are compared in constant
//! time so that response timing does not leak how much of a key was right.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What a key may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The real-time decision service: eligibility, consent events.
    Decision,
    /// Fulfilment systems: pick priorities, inventory events.
    Fulfilment,
    /// Supply-chain planners: plan listing, activation, rollback.
    Planner,
    /// Everything, including data-subject access to the audit.
    Admin,
}

/// One configured key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The secret sent as `Authorization: Bearer <key>` or `x-api-key`.
    pub key: String,
    /// Its role.
    pub role: Role,
}

/// The key file: `{"keys": [{"key": "...", "role": "decision"}, ...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeys {
    /// Every accepted key.
    pub keys: Vec<ApiKey>,
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("API key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("API key file {path}: {reason} (expected {{\"keys\": [{{\"key\": \"...\", \"role\": \"decision|fulfilment|planner|admin\"}}]}})")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ApiKeys {
    /// Reads a key file, or creates one with a fresh random key per role when it
    /// does not exist (readable only by its owner), so a new install is never open.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyFileError> {
        let name = path.display().to_string();
        let io = |source| KeyFileError::Io { path: name.clone(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let keys: ApiKeys = serde_json::from_str(&text).map_err(|e| KeyFileError::Invalid { path: name.clone(), reason: e.to_string() })?;
                if let Some(k) = keys.keys.iter().find(|k| k.key.len() < 16) {
                    return Err(KeyFileError::Invalid { path: name, reason: format!("a {:?} key is shorter than 16 characters", k.role).to_lowercase() });
                }
                // One key, one role: a key listed twice would take the last
                // role listed (a decision key listed again as admin gained
                // every right), whatever its author meant.
                if let Some((i, k)) = keys.keys.iter().enumerate().find(|(i, k)| keys.keys[..*i].iter().any(|earlier| earlier.key == k.key)) {
                    let reason = format!("key {} (role {}) is listed before: each key is listed once, with one role", i + 1, format!("{:?}", k.role).to_lowercase());
                    return Err(KeyFileError::Invalid { path: name, reason });
                }
                Ok((keys, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut random = [0u8; 4 * 24];
                use std::io::Read;
                std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random)).map_err(io)?;
                let roles = [Role::Decision, Role::Fulfilment, Role::Planner, Role::Admin];
                let keys = ApiKeys {
                    keys: roles
                        .iter()
                        .zip(random.chunks(24))
                        .map(|(&role, bytes)| ApiKey { key: bytes.iter().map(|b| format!("{b:02x}")).collect(), role })
                        .collect(),
                };
                let text = serde_json::to_string_pretty(&keys).map_err(|e| io(std::io::Error::other(e)))?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                use std::io::Write;
                options.open(path).and_then(|mut f| f.write_all(text.as_bytes()).and_then(|_| f.sync_all())).map_err(io)?;
                Ok((keys, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The role of a presented key, if it is one of ours.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        // Every key is compared, so the time does not depend on which one matched.
        let mut found = None;
        for k in &self.keys {
            if constant_time_eq(k.key.as_bytes(), presented.as_bytes()) {
                found = Some(k.role);
            }
        }
        found
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key needed (health probes).
    Public,
    /// Any valid key.
    AnyKey,
    /// These roles, and `admin`.
    Roles(&'static [Role]),
}

impl Access {
    /// Whether `role` may call a route with this access.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::AnyKey => true,
            Access::Roles(roles) => role == Role::Admin || roles.contains(&role),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key listed twice is refused whatever its roles: listed as decision
    /// and then admin, it served the admin routes.
    #[test]
    fn a_key_listed_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let twice = r#"{"keys": [{"key": "0123456789abcdef0", "role": "decision"}, {"key": "fedcba98765432100", "role": "planner"}, {"key": "0123456789abcdef0", "role": "admin"}]}"#;
        std::fs::write(&path, twice).unwrap();
        let e = ApiKeys::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("key 3 (role admin) is listed before"), "{e}");
        std::fs::write(&path, twice.replace(r#""0123456789abcdef0", "role": "admin""#, r#""0123456789abcdef1", "role": "admin""#)).unwrap();
        let (keys, created) = ApiKeys::load_or_create(&path).unwrap();
        assert_eq!((keys.keys.len(), created, keys.role_of("0123456789abcdef0")), (3, false, Some(Role::Decision)));
    }
}
