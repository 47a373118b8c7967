//! `serde` support (feature `serde`) for the name types and property values. A name
//! travels as its string and is validated when decoded, so a malformed name from a
//! peer is a decoding error (its message starts with `invalid name: `), never a
//! value. A [`PropValue`](crate::PropValue) is a JSON number or a JSON string; it
//! is checked against its property by [`from_listing`](crate::props::from_listing),
//! which needs the name as well.

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

/// A property value is a JSON number (a uint64) or a JSON string, untagged.
impl Serialize for crate::PropValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            crate::PropValue::Number(n) => s.serialize_u64(*n),
            crate::PropValue::String(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for crate::PropValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PropValueVisitor;

        impl serde::de::Visitor<'_> for PropValueVisitor {
            type Value = crate::PropValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a property value: an unsigned 64-bit integer or a string")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(crate::PropValue::Number(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(crate::PropValue::Number)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(crate::PropValue::String(v.to_string()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(crate::PropValue::String(v))
            }
        }

        d.deserialize_any(PropValueVisitor)
    }
}
