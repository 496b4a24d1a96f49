//! The TOML document as JSON, with where each value was written.
//!
//! The config is validated as JSON (JSON Schema speaks JSON pointers), but
//! people read line and column. Walking the parser's spanned tree once gives
//! both: the JSON value and, for every JSON pointer, the byte span of its value
//! (and of its key, for table entries).

use std::collections::HashMap;
use std::ops::Range;

use serde_json::{Map, Number, Value};
use toml::de::{DeTable, DeValue};

/// Where the values of one document were written.
#[derive(Debug, Default, Clone)]
pub(crate) struct SourceMap {
    text_len: usize,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    values: HashMap<String, Range<usize>>,
    keys: HashMap<String, Range<usize>>,
}

impl SourceMap {
    pub(crate) fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            text_len: text.len(),
            line_starts,
            values: HashMap::new(),
            keys: HashMap::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text_len);
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, column)
    }

    /// The byte offset that best shows `pointer`: its key when it has one (so a
    /// `[[checks]]` entry points at the key rather than the first line of its
    /// value), else its value, else the nearest ancestor that was written.
    pub(crate) fn offset_of(&self, pointer: &str) -> usize {
        let mut p = pointer;
        loop {
            if let Some(span) = self.keys.get(p).or_else(|| self.values.get(p)) {
                return span.start;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return 0,
            }
        }
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Converts a parsed document into JSON, recording spans into `map`.
pub(crate) fn to_json(table: &DeTable<'_>, map: &mut SourceMap) -> Value {
    table_to_json(table, "", map)
}

fn table_to_json(table: &DeTable<'_>, at: &str, map: &mut SourceMap) -> Value {
    let mut out = Map::new();
    for (key, value) in table.iter() {
        let pointer = format!("{at}/{}", escape(key.get_ref()));
        map.keys.insert(pointer.clone(), key.span());
        map.values.insert(pointer.clone(), value.span());
        let json = value_to_json(value.get_ref(), &pointer, map);
        out.insert(key.get_ref().to_string(), json);
    }
    Value::Object(out)
}

fn value_to_json(value: &DeValue<'_>, at: &str, map: &mut SourceMap) -> Value {
    match value {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(Value::from)
            .or_else(|_| u64::from_str_radix(i.as_str(), i.radix()).map(Value::from))
            // Too large for JSON's integers: keep the text so validation says so.
            .unwrap_or_else(|_| Value::String(i.as_str().to_owned())),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            // nan and inf have no JSON form; a string fails any numeric schema.
            .unwrap_or_else(|| Value::String(f.as_str().to_owned())),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let pointer = format!("{at}/{i}");
                    map.values.insert(pointer.clone(), item.span());
                    value_to_json(item.get_ref(), &pointer, map)
                })
                .collect(),
        ),
        DeValue::Table(t) => table_to_json(t, at, map),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_map_to_lines_and_columns() {
        let text = "a = 1\n[b]\nc = \"x\"\n[[d]]\ne = [1, 2]\n";
        let doc = DeTable::parse(text).unwrap();
        let mut map = SourceMap::new(text);
        let json = to_json(doc.get_ref(), &mut map);
        assert_eq!(json["d"][0]["e"][1], 2);
        let at = |p: &str| map.line_col(text, map.offset_of(p));
        assert_eq!(at("/a"), (1, 1));
        assert_eq!(at("/b/c"), (3, 1));
        assert_eq!(at("/d/0/e"), (5, 1));
        assert_eq!(at("/d/0/e/1"), (5, 9));
        assert_eq!(at("/b/c/missing"), (3, 1));
    }
}
