//! `serde` support for the name types (feature `serde`): a name travels as its
//! string and is validated when decoded, so a malformed name from a peer is a
//! decoding error (its message starts with `invalid name: `), never a value.

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{Serialize, Serializer};

use crate::{BookmarkName, DatasetName, SendSource, SnapshotName};

macro_rules! string_serde {
    ($t:ty, $parse:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $parse(s).map_err(|e| D::Error::custom(format!("invalid name: {e}")))
            }
        }
    };
}

string_serde!(DatasetName, DatasetName::new);
string_serde!(SnapshotName, SnapshotName::new);
string_serde!(BookmarkName, BookmarkName::new);
string_serde!(SendSource, |s: String| SendSource::new(&s));
