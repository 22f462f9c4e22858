//! Schema versions of every JSON artefact allot saves (`kpis.json`,
//! `manifest.json`, `serving.json`, `shadow_prices.json`,
//! `uptake_report.json`, `partitions.json`; and the old file mode's
//! `active.json` and lines of `activations.jsonl`, read once when the
//! decision service imports them into its live-state database).
//!
//! Why: plan versions are kept for months and read by newer builds (the
//! decision service, `plans show`, rollback to an old version). Each file says
//! which format generation wrote it, so a reader can accept every older one it
//! still understands and refuse a newer one with a clear error instead of
//! misreading it. Tables inside a plan version carry no field of their own:
//! the version's `manifest.json` speaks for them.
//!
//! Versions:
//! - 1: files written before the field existed (a missing `schema_version`
//!   means 1).
//! - 2: every file carries `schema_version`; `shadow_prices.json` becomes an
//!   object (`{"schema_version", "values"}`) instead of a bare array; a plan
//!   version also holds the demand plan, the marginal values and the forecasts.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StoreError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 2;
/// The oldest schema version this build still reads.
pub const OLDEST_SUPPORTED: u32 = 1;
/// The field naming the version in every artefact.
pub const FIELD: &str = "schema_version";

/// A value written with its schema version as the first field.
#[derive(Serialize)]
struct Tagged<T: Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    body: T,
}

/// A list artefact as read: `{"schema_version", "values"}` (a bare JSON array
/// has nowhere to put the version).
#[derive(Deserialize)]
struct TaggedList<T> {
    values: Vec<T>,
}

/// `value` (a struct) with `schema_version` first, ready to serialize.
pub fn tagged<T: Serialize>(value: &T) -> impl Serialize + '_ {
    Tagged { schema_version: SCHEMA_VERSION, body: value }
}

/// A list artefact as `{"schema_version", "values": [...]}`, ready to serialize.
pub fn tagged_list<T: Serialize>(values: &[T]) -> impl Serialize + '_ {
    Tagged { schema_version: SCHEMA_VERSION, body: TaggedListRef { values } }
}

#[derive(Serialize)]
struct TaggedListRef<'a, T: Serialize> {
    values: &'a [T],
}

/// The schema version of a parsed artefact: its `schema_version` field, 1 when
/// absent, an error when it is not a whole number or newer than this build.
pub fn version_of(value: &Value, path: &Path) -> Result<u32, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { path: path.to_path_buf(), reason };
    let version = match value.get(FIELD) {
        None => 1,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| corrupt(format!("`{FIELD}` must be a positive whole number, got {v}")))?,
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    if version < OLDEST_SUPPORTED {
        return Err(corrupt(format!("`{FIELD}` {version} is older than the oldest supported ({OLDEST_SUPPORTED})")));
    }
    Ok(version)
}

/// Parses an artefact (a struct) of any supported version from JSON text.
pub fn from_str<T: DeserializeOwned>(text: &str, path: &Path) -> Result<(u32, T), StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt { path: path.to_path_buf(), reason: e.to_string() };
    let mut value: Value = serde_json::from_str(text).map_err(corrupt)?;
    let version = version_of(&value, path)?;
    if let Some(map) = value.as_object_mut() {
        map.remove(FIELD);
    }
    Ok((version, serde_json::from_value(value).map_err(corrupt)?))
}

/// Parses a list artefact of any supported version: a bare array (version 1)
/// or `{"schema_version", "values"}`.
pub fn list_from_str<T: DeserializeOwned>(text: &str, path: &Path) -> Result<(u32, Vec<T>), StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt { path: path.to_path_buf(), reason: e.to_string() };
    let value: Value = serde_json::from_str(text).map_err(corrupt)?;
    if value.is_array() {
        return Ok((1, serde_json::from_value(value).map_err(corrupt)?));
    }
    let (version, list) = from_str::<TaggedList<T>>(text, path)?;
    Ok((version, list.values))
}

/// Reads an artefact file (a struct); `missing` is the error when it does not exist.
pub fn read<T: DeserializeOwned>(path: &Path, missing: impl FnOnce() -> StoreError) -> Result<(u32, T), StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(StoreError::io("cannot read", path, e)),
    };
    from_str(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        a: u32,
    }

    #[test]
    fn writes_the_version_first_and_reads_every_supported_one() {
        let text = serde_json::to_string(&tagged(&Thing { a: 3 })).unwrap();
        assert_eq!(text, format!("{{\"schema_version\":{SCHEMA_VERSION},\"a\":3}}"));
        let p = Path::new("x.json");
        assert_eq!(from_str::<Thing>(&text, p).unwrap(), (SCHEMA_VERSION, Thing { a: 3 }));
        assert_eq!(from_str::<Thing>("{\"a\":3}", p).unwrap(), (1, Thing { a: 3 }), "missing field = version 1");
        assert_eq!(list_from_str::<Thing>("[{\"a\":1}]", p).unwrap(), (1, vec![Thing { a: 1 }]));
        let list = serde_json::to_string(&tagged_list(&[Thing { a: 1 }])).unwrap();
        assert_eq!(list_from_str::<Thing>(&list, p).unwrap(), (SCHEMA_VERSION, vec![Thing { a: 1 }]));
    }

    #[test]
    fn refuses_a_newer_version_naming_the_file() {
        let newer = format!("{{\"schema_version\":{},\"a\":3,\"new_field\":[]}}", SCHEMA_VERSION + 1);
        let err = from_str::<Thing>(&newer, Path::new("plans/000001/kpis.json")).unwrap_err().to_string();
        assert!(err.contains("plans/000001/kpis.json") && err.contains(&format!("schema_version {}", SCHEMA_VERSION + 1)) && err.contains("newer"), "{err}");
        let bad = from_str::<Thing>("{\"schema_version\":\"two\",\"a\":3}", Path::new("k.json")).unwrap_err().to_string();
        assert!(bad.contains("positive whole number"), "{bad}");
    }
}
