//! The embedded store's records on disk: a key's value with its revisions, and a
//! change-log entry. Both are little-endian, length-checked on decode, so a corrupt file is
//! an error and never a panic.

use crate::{DatastoreError, KeyValue, Result, WatchEvent};

fn corrupt(what: &str) -> DatastoreError {
    DatastoreError::Backend(format!("corrupt {what} record in the embedded store"))
}

/// A key's record: `create_revision (i64 LE) | mod_revision (i64 LE) | value`.
pub(super) struct StoredValue {
    pub(super) create_revision: i64,
    pub(super) mod_revision: i64,
    pub(super) value: Vec<u8>,
}

impl StoredValue {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.value.len());
        out.extend_from_slice(&self.create_revision.to_le_bytes());
        out.extend_from_slice(&self.mod_revision.to_le_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    pub(super) fn decode(raw: &[u8]) -> Result<StoredValue> {
        let (create, rest) = split_i64(raw).ok_or_else(|| corrupt("key"))?;
        let (modified, value) = split_i64(rest).ok_or_else(|| corrupt("key"))?;
        Ok(StoredValue {
            create_revision: create,
            mod_revision: modified,
            value: value.to_vec(),
        })
    }

    pub(super) fn into_key_value(self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

/// One change-log entry (its revision is the table key):
/// `0 | create_revision | key_len (u32 LE) | key | value` for a put,
/// `1 | key` for a delete.
pub(super) enum Change {
    Put {
        key: String,
        create_revision: i64,
        value: Vec<u8>,
    },
    Delete {
        key: String,
    },
}

const CHANGE_PUT: u8 = 0;
const CHANGE_DELETE: u8 = 1;

impl Change {
    pub(super) fn key(&self) -> &str {
        match self {
            Change::Put { key, .. } | Change::Delete { key } => key,
        }
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        match self {
            Change::Put {
                key,
                create_revision,
                value,
            } => {
                let mut out = Vec::with_capacity(13 + key.len() + value.len());
                out.push(CHANGE_PUT);
                out.extend_from_slice(&create_revision.to_le_bytes());
                // Keys are bounded by redb's own limits, far below u32::MAX.
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(value);
                out
            }
            Change::Delete { key } => {
                let mut out = Vec::with_capacity(1 + key.len());
                out.push(CHANGE_DELETE);
                out.extend_from_slice(key.as_bytes());
                out
            }
        }
    }

    pub(super) fn decode(raw: &[u8]) -> Result<Change> {
        let bad = || corrupt("change-log");
        let (&kind, rest) = raw.split_first().ok_or_else(bad)?;
        match kind {
            CHANGE_PUT => {
                let (create_revision, rest) = split_i64(rest).ok_or_else(bad)?;
                let len_bytes: [u8; 4] = rest
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(bad)?;
                let key_len = u32::from_le_bytes(len_bytes) as usize;
                let rest = &rest[4..];
                let key = rest.get(..key_len).ok_or_else(bad)?;
                let value = &rest[key_len..];
                let key = std::str::from_utf8(key).map_err(|_| bad())?.to_string();
                Ok(Change::Put {
                    key,
                    create_revision,
                    value: value.to_vec(),
                })
            }
            CHANGE_DELETE => Ok(Change::Delete {
                key: std::str::from_utf8(rest).map_err(|_| bad())?.to_string(),
            }),
            _ => Err(bad()),
        }
    }

    pub(super) fn into_event(self, revision: i64) -> WatchEvent {
        match self {
            Change::Put {
                key,
                create_revision,
                value,
            } => WatchEvent::Put(KeyValue {
                key,
                value,
                create_revision,
                mod_revision: revision,
            }),
            Change::Delete { key } => WatchEvent::Delete {
                key,
                mod_revision: revision,
            },
        }
    }
}

fn split_i64(raw: &[u8]) -> Option<(i64, &[u8])> {
    let bytes: [u8; 8] = raw.get(..8)?.try_into().ok()?;
    Some((i64::from_le_bytes(bytes), &raw[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_records_round_trip() {
        let put = Change::Put {
            key: "/a/b".into(),
            create_revision: 7,
            value: b"xyz".to_vec(),
        };
        match Change::decode(&put.encode()).unwrap() {
            Change::Put {
                key,
                create_revision,
                value,
            } => {
                assert_eq!(
                    (key.as_str(), create_revision, value.as_slice()),
                    ("/a/b", 7, &b"xyz"[..])
                )
            }
            Change::Delete { .. } => panic!("decoded a put as a delete"),
        }
        let delete = Change::Delete { key: "/a/c".into() };
        assert!(
            matches!(Change::decode(&delete.encode()).unwrap(), Change::Delete { key } if key == "/a/c")
        );
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let put = Change::Put {
            key: "/key".into(),
            create_revision: 1,
            value: b"v".to_vec(),
        }
        .encode();
        for len in 0..put.len() - 1 {
            // Every strict prefix that cuts into the header or the key must be refused.
            if len < 1 + 8 + 4 + 4 {
                assert!(
                    Change::decode(&put[..len]).is_err(),
                    "prefix of {len} bytes accepted"
                );
            }
        }
        assert!(Change::decode(&[9]).is_err());
        for len in 0..16 {
            assert!(StoredValue::decode(&vec![0; len]).is_err());
        }
    }
}
