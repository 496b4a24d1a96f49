//! Reading only the parts of an event that are read: the body is parsed
//! into a JSON value that keeps the fields [`event`](super::event) reads
//! (at the same JSON pointers, so its errors name the producer's fields)
//! and skips every other one while parsing, never building it. A Spark
//! event's logical plan or a schema facet of thousands of columns is
//! skipped at the cost of scanning it, where a whole `serde_json::Value`
//! of it would take tens of times its size in memory while it lives.
//!
//! A field whose type is not the one expected is kept whole, so the reader
//! names what is wrong with it. It must not know HTTP, checks or the store.

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// What is kept of a JSON value.
pub enum Keep {
    /// All of it.
    All,
    /// Of an object, these fields, each as said; the others are skipped.
    Fields(&'static [(&'static str, Keep)]),
    /// Of an array, each element as said.
    Each(&'static Keep),
}

const NAME: &[(&str, Keep)] = &[("namespace", Keep::All), ("name", Keep::All)];

const ASSERTION: Keep = Keep::Fields(&[
    ("assertion", Keep::All),
    ("column", Keep::All),
    ("success", Keep::All),
]);

const DATASET_FACETS: Keep = Keep::Fields(&[
    ("outputStatistics", Keep::Fields(&[("rowCount", Keep::All)])),
    (
        "dataQualityAssertions",
        Keep::Fields(&[("assertions", Keep::Each(&ASSERTION))]),
    ),
]);

const DATASET: Keep = Keep::Fields(&[
    ("namespace", Keep::All),
    ("name", Keep::All),
    ("facets", DATASET_FACETS),
    ("inputFacets", DATASET_FACETS),
    ("outputFacets", DATASET_FACETS),
]);

/// What [`event::read`](super::event::read) reads of a RunEvent (and the
/// fields that tell a DatasetEvent or JobEvent apart).
pub const EVENT: Keep = Keep::Fields(&[
    ("eventType", Keep::All),
    ("eventTime", Keep::All),
    (
        "run",
        Keep::Fields(&[
            ("runId", Keep::All),
            (
                "facets",
                Keep::Fields(&[
                    ("errorMessage", Keep::Fields(&[("message", Keep::All)])),
                    (
                        "nominalTime",
                        Keep::Fields(&[
                            ("nominalStartTime", Keep::All),
                            ("nominalEndTime", Keep::All),
                        ]),
                    ),
                ]),
            ),
        ]),
    ),
    ("job", Keep::Fields(NAME)),
    ("dataset", Keep::Fields(NAME)),
    ("inputs", Keep::Each(&DATASET)),
    ("outputs", Keep::Each(&DATASET)),
]);

impl<'de> DeserializeSeed<'de> for &Keep {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self {
            Keep::All => Value::deserialize(deserializer),
            Keep::Fields(_) | Keep::Each(_) => deserializer.deserialize_any(Pruned(self)),
        }
    }
}

/// Builds a value as [`Keep`] says; anything but the expected object or
/// array is built whole.
struct Pruned<'k>(&'k Keep);

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        match self.0 {
            Keep::Each(each) => {
                while let Some(v) = seq.next_element_seed(*each)? {
                    out.push(v);
                }
            }
            _ => {
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(v);
                }
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let kept = match self.0 {
                Keep::Fields(fields) => fields.iter().find(|(k, _)| *k == key).map(|(_, f)| f),
                _ => Some(&Keep::All),
            };
            match kept {
                Some(keep) => {
                    out.insert(key, map.next_value_seed(keep)?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::wire::read_json_seed;

    #[test]
    fn what_is_read_is_kept_at_its_pointer_and_the_rest_skipped() {
        let body = br#"{"eventType":"COMPLETE","producer":"p","schemaURL":"s",
            "run":{"runId":"r","facets":{"spark_plan":{"huge":[1,2,3]},"nominalTime":{"nominalStartTime":"t","_producer":"x"}}},
            "job":{"namespace":"n","name":"j","facets":{"sql":{"query":"select 1"}}},
            "inputs":[{"namespace":"d","name":"a","facets":{"schema":{"fields":[]}},
                       "inputFacets":{"dataQualityAssertions":{"assertions":[{"assertion":"x","success":true,"extra":1}]}}}],
            "outputs":"not an array"}"#;
        let v = read_json_seed(body, &EVENT).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"eventType":"COMPLETE",
                "run":{"runId":"r","facets":{"nominalTime":{"nominalStartTime":"t"}}},
                "job":{"namespace":"n","name":"j"},
                "inputs":[{"namespace":"d","name":"a","facets":{},
                           "inputFacets":{"dataQualityAssertions":{"assertions":[{"assertion":"x","success":true}]}}}],
                "outputs":"not an array"})
        );
        // Still JSON, checked to its end.
        assert!(read_json_seed(br#"{"run":{}} x"#, &EVENT).is_err());
        assert!(read_json_seed(br#"{"run":{"facets":{"x":[}}}"#, &EVENT).is_err());
    }
}
