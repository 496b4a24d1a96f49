//! Connections: page sizes, opaque cursors, pages of in-memory lists and of
//! keyed store reads.

use super::*;

/// The page size `first` asks for: 1 to 100, 20 when absent.
pub fn page_size(first: Option<i32>) -> Result<usize> {
    match first {
        None => Ok(DEFAULT_PAGE),
        Some(n) if n >= 1 && n as usize <= MAX_PAGE => Ok(n as usize),
        Some(n) => Err(error(
            Code::BadUserInput,
            format!("first must be between 1 and {MAX_PAGE}, not {n}"),
        )),
    }
}

pub fn cursor(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// The raw text of a cursor this API issued with `prefix`.
pub fn uncursor(after: Option<&str>, prefix: &str) -> Result<Option<String>> {
    let Some(after) = after else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(after)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(prefix).map(str::to_owned))
        .map(Some)
        .ok_or_else(|| error(Code::BadUserInput, format!("invalid cursor {after:?}")))
}

/// One page of an in-memory list, by position.
pub fn offset_page<T: async_graphql::OutputType>(
    items: Vec<T>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, T>> {
    let size = page_size(first)?;
    let start = match uncursor(after.as_deref(), "o:")? {
        Some(n) => {
            n.parse::<usize>()
                .map_err(|_| error(Code::BadUserInput, "invalid cursor"))?
                + 1
        }
        None => 0,
    };
    let total = items.len();
    let mut conn = Connection::new(start > 0, start + size < total);
    conn.edges.extend(
        items
            .into_iter()
            .enumerate()
            .skip(start)
            .take(size)
            .map(|(i, item)| Edge::new(cursor(&format!("o:{i}")), item)),
    );
    Ok(conn)
}

/// A page read with one row more than asked, to know whether another follows.
pub(crate) fn keyed_page<T: async_graphql::OutputType, R>(
    mut rows: Vec<R>,
    size: usize,
    has_previous: bool,
    key: impl Fn(&R) -> String,
    node: impl Fn(R) -> T,
) -> Connection<String, T> {
    let more = rows.len() > size;
    rows.truncate(size);
    let mut conn = Connection::new(has_previous, more);
    conn.edges.extend(rows.into_iter().map(|r| {
        let c = cursor(&key(&r));
        Edge::new(c, node(r))
    }));
    conn
}
