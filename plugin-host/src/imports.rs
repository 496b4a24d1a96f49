//! The host functions whose arguments a plugin could make cost the host far
//! more than its own memory: `log`, `emit-ids` and the `wasi:http` calls that
//! build header sets from lists.
//!
//! The canonical ABI lets every element of a list of strings point at the same
//! bytes, so a plugin can pass a list whose copy is far larger than its memory.
//! wasmtime stops one call's copy at its hostcall fuel (set to the run's memory
//! limit in `run.rs`); these functions go further: they take their arguments
//! unlifted (`WasmStr`, `WasmList`), check each element against the run's
//! limits and copy only what they keep, so ids, log fields and headers cost the
//! host what the limits say. They are linked in place of the bindgen and
//! wasmtime versions; everything else a plugin imports is wasmtime's.
//!
//! It owns the run's id allowance ([`IdIntake`]); it must not decide limits
//! (they come from the run's [`Limits`]) nor know where ids and log lines go
//! after the [`IdSink`] and the run's log.

use std::collections::HashSet;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, LinkerInstance, Resource, WasmList, WasmStr};
use wasmtime::{AsContextMut, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{HeaderError, HostFields};
use wasmtime_wasi_http::{FieldMap, FieldMapError};

use super::IdSink;
use super::bindings::types::{ConnectorError, ErrorClass, LogLevel};
use super::logs::{MAX_FIELDS, field_key, field_value};
use super::run::{Incidents, RunState, Violation};
use super::sandbox::{ID_ASSET_OVERHEAD, ID_OVERHEAD, Limits};

/// The contract's host interface, as the components built against it import it.
const HOST_INTERFACE: &str = "tributary:connector/host@1.0.0";
/// The `wasi:http` version wasmtime-wasi-http implements.
const HTTP_TYPES: &str = "wasi:http/types@0.2.12";
/// What a header entry costs besides its name and value, about what
/// wasmtime's header map holds per entry.
const HEADER_ENTRY_OVERHEAD: usize = 32;

/// Adds the contract's types and host functions, and replaces wasmtime's
/// `fields.from-list` and `fields.set` (already in `linker`) with lazily
/// lifting ones.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    super::bindings::tributary::connector::types::add_to_linker::<_, HasSelf<RunState>>(
        linker,
        |state| state,
    )?;
    let mut host = linker.instance(HOST_INTERFACE)?;
    host.func_wrap("log", log)?;
    host.func_wrap("emit-ids", emit_ids)?;
    linker.allow_shadowing(true);
    let mut http: LinkerInstance<'_, RunState> = linker.instance(HTTP_TYPES)?;
    http.func_wrap("[static]fields.from-list", fields_from_list)?;
    http.func_wrap("[method]fields.set", fields_set)?;
    linker.allow_shadowing(false);
    Ok(())
}

type Fields = (WasmStr, WasmStr);

/// `log`: only the first [`MAX_FIELDS`] fields are read; the log caps sizes.
fn log(
    mut store: StoreContextMut<'_, RunState>,
    (level, message, fields): (LogLevel, WasmStr, WasmList<Fields>),
) -> wasmtime::Result<()> {
    let log = store.data().log.clone();
    if !log.has_budget() {
        return Ok(());
    }
    let mut kept = Vec::with_capacity(fields.len().min(MAX_FIELDS));
    for i in 0..fields.len().min(MAX_FIELDS) {
        let Some(field) = fields.get(store.as_context_mut(), i) else {
            break;
        };
        let (key, value) = field?;
        kept.push((
            field_key(&key.to_str(&store)?),
            field_value(&value.to_str(&store)?),
        ));
    }
    let dropped = fields.len() - kept.len();
    let message = message.to_str(&store)?;
    log.plugin_line(level, &message, &kept, dropped);
    Ok(())
}

/// The run's allowance of ids, charged before anything is copied.
pub(crate) struct IdIntake {
    sink: Option<Arc<dyn IdSink>>,
    ids_left: u64,
    bytes_left: u64,
    limits: Limits,
    /// Assets that already have ids (charged once each).
    assets: HashSet<String>,
    incidents: Arc<Incidents>,
}

impl IdIntake {
    pub(crate) fn new(
        sink: Option<Arc<dyn IdSink>>,
        limits: &Limits,
        incidents: Arc<Incidents>,
    ) -> Self {
        Self {
            sink,
            ids_left: limits.ids,
            bytes_left: limits.id_bytes,
            limits: limits.clone(),
            assets: HashSet::new(),
            incidents,
        }
    }

    /// Charges `bytes` for `count` ids, or says which limit they break.
    fn charge(&mut self, count: u64, bytes: u64) -> Result<(), Violation> {
        if count > self.ids_left {
            return Err(Violation::Ids {
                limit: self.limits.ids,
            });
        }
        if bytes > self.bytes_left {
            return Err(Violation::IdBytes {
                limit: self.limits.id_bytes,
            });
        }
        self.ids_left -= count;
        self.bytes_left -= bytes;
        Ok(())
    }

    fn check_length(&self, length: usize) -> Result<(), Violation> {
        if length > self.limits.id_length {
            return Err(Violation::IdLength {
                limit: self.limits.id_length,
                length,
            });
        }
        Ok(())
    }

    fn refuse(&self, violation: Violation) -> ConnectorError {
        let message = violation.to_string();
        self.incidents.record(violation);
        refusal(message)
    }
}

fn refusal(message: String) -> ConnectorError {
    ConnectorError {
        class: ErrorClass::System,
        message,
        retry_after_ms: None,
    }
}

/// `emit-ids`: each id is measured in the plugin's memory and copied only once
/// the run's allowance covers it.
fn emit_ids(
    mut store: StoreContextMut<'_, RunState>,
    (asset, ids): (WasmStr, WasmList<WasmStr>),
) -> wasmtime::Result<(Result<(), ConnectorError>,)> {
    let Some(sink) = store.data().ids.sink.clone() else {
        return Ok((Err(refusal("this call does not take ids".into())),));
    };
    let asset = asset.to_str(&store)?;
    if let Err(v) = store.data().ids.check_length(asset.len()) {
        return Ok((Err(store.data().ids.refuse(v)),));
    }
    let asset = asset.into_owned();
    let mut bytes = 0;
    if !store.data().ids.assets.contains(&asset) {
        bytes += asset.len() as u64 + ID_ASSET_OVERHEAD;
    }
    let mut batch = Vec::with_capacity(ids.len().min(1 << 16));
    for i in 0..ids.len() {
        let Some(id) = ids.get(store.as_context_mut(), i) else {
            break;
        };
        let id = id?;
        let id = id.to_str(&store)?;
        let intake = &store.data().ids;
        if let Err(v) = intake.check_length(id.len()) {
            return Ok((Err(intake.refuse(v)),));
        }
        bytes += id.len() as u64 + ID_OVERHEAD;
        // Refuse as soon as the batch alone is over what is left.
        if bytes > intake.bytes_left {
            let v = Violation::IdBytes {
                limit: intake.limits.id_bytes,
            };
            return Ok((Err(intake.refuse(v)),));
        }
        batch.push(id.into_owned());
    }
    let intake = &mut store.data_mut().ids;
    if let Err(v) = intake.charge(batch.len() as u64, bytes) {
        return Ok((Err(intake.refuse(v)),));
    }
    intake.assets.insert(asset.clone());
    Ok((sink.accept(&asset, batch).map_err(refusal),))
}

/// Counts `bytes` more of one header set against `limits.http_headers`. Over
/// it, the call traps with wasmtime's own error for an oversized set (the run
/// then fails with [`Violation::HttpHeaders`], see `run.rs`).
fn charge_header(total: &mut usize, bytes: usize, limit: usize) -> wasmtime::Result<()> {
    *total += bytes + HEADER_ENTRY_OVERHEAD;
    if *total > limit {
        return Err(FieldMapError::TotalSizeTooBig.into());
    }
    Ok(())
}

fn header_result<T>(
    result: Result<T, wasmtime_wasi_http::p2::HeaderError>,
) -> wasmtime::Result<Result<T, HeaderError>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(err) => Ok(Err(err.downcast()?)),
    }
}

/// `fields.from-list`, measured before it is copied.
fn fields_from_list(
    mut store: StoreContextMut<'_, RunState>,
    (entries,): (WasmList<(WasmStr, WasmList<u8>)>,),
) -> wasmtime::Result<(Result<Resource<FieldMap>, HeaderError>,)> {
    let limit = store.data().limits.http_headers;
    let mut total = 0;
    let mut owned = Vec::new();
    for i in 0..entries.len() {
        let Some(entry) = entries.get(store.as_context_mut(), i) else {
            break;
        };
        let (name, value) = entry?;
        let name = name.to_str(&store)?;
        let value = value.as_le_slice(&store);
        charge_header(&mut total, name.len() + value.len(), limit)?;
        owned.push((name.into_owned(), value.to_vec()));
    }
    let mut view = store.data_mut().http();
    Ok((header_result(HostFields::from_list(&mut view, owned))?,))
}

/// `fields.set`, measured before it is copied.
fn fields_set(
    mut store: StoreContextMut<'_, RunState>,
    (fields, name, values): (Resource<FieldMap>, WasmStr, WasmList<WasmList<u8>>),
) -> wasmtime::Result<(Result<(), HeaderError>,)> {
    let limit = store.data().limits.http_headers;
    let mut total = 0;
    let name = name.to_str(&store)?;
    charge_header(&mut total, name.len(), limit)?;
    let name = name.into_owned();
    let mut owned = Vec::new();
    for i in 0..values.len() {
        let Some(value) = values.get(store.as_context_mut(), i) else {
            break;
        };
        let value = value?;
        let value = value.as_le_slice(&store);
        charge_header(&mut total, value.len(), limit)?;
        owned.push(value.to_vec());
    }
    let mut view = store.data_mut().http();
    Ok((header_result(HostFields::set(
        &mut view, fields, name, owned,
    ))?,))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_charged_by_count_and_bytes() {
        let limits = Limits {
            ids: 3,
            id_bytes: 100,
            ..Limits::default()
        };
        let mut intake = IdIntake::new(None, &limits, Arc::default());
        assert_eq!(intake.charge(2, 50), Ok(()));
        assert_eq!(intake.charge(2, 10), Err(Violation::Ids { limit: 3 }));
        assert_eq!(intake.charge(1, 51), Err(Violation::IdBytes { limit: 100 }));
        assert_eq!(intake.charge(1, 50), Ok(()));
        assert_eq!(
            intake.check_length(4097),
            Err(Violation::IdLength {
                limit: 4096,
                length: 4097
            })
        );
    }
}
