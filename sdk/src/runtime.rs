//! Drives a plugin over batch buffers: the code between the WIT exports (or the native
//! test harness) and the plugin's per-event `process`.

use weir_wire::{BatchReader, EventFields, ReplyWriter};

use crate::event::Reads;
use crate::{Event, Plugin};

/// A configured plugin plus what it declared.
pub(crate) struct Instance<P> {
    plugin: P,
    reads: Reads,
    find_keys: Vec<String>,
}

impl<P: Plugin> Instance<P> {
    /// Parses the configuration (JSON text), builds the plugin, and records its fields.
    /// Errors name the offending key, e.g. `config.rules[1].pattern: invalid type ...`.
    pub(crate) fn new(config: &str) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_str(config);
        let config: P::Config = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            let inner = strip_position(&message);
            if path == "." {
                format!("config: {inner}")
            } else {
                format!("config.{path}: {inner}")
            }
        })?;
        let plugin = P::init(config)?;
        let fields = plugin.fields();
        Ok(Instance {
            plugin,
            reads: Reads::new(fields.reads),
            find_keys: fields.find_keys,
        })
    }

    pub(crate) fn reads(&self) -> &[String] {
        self.reads.names()
    }

    pub(crate) fn find_keys(&self) -> &[String] {
        &self.find_keys
    }

    /// Runs every event of `batch` through the plugin and returns the reply buffer.
    pub(crate) fn process(&mut self, batch: &[u8]) -> Result<Vec<u8>, String> {
        let mut reader = BatchReader::new(batch).map_err(|e| format!("malformed batch: {e}"))?;
        if reader.slot_count() != self.reads.names().len() {
            return Err(format!(
                "batch carries {} fields per event, the plugin declared {}",
                reader.slot_count(),
                self.reads.names().len()
            ));
        }
        let mut reply = ReplyWriter::with_capacity(reader.event_count());
        let mut fields = EventFields::default();
        let finds_keys = !self.find_keys.is_empty();
        while reader
            .next_event(&mut fields)
            .map_err(|e| format!("malformed batch: {e}"))?
        {
            let mut event = Event::new(&self.reads, finds_keys, &fields, &mut reply);
            let outcome = self.plugin.process(&mut event);
            let wire = outcome.to_wire();
            reply.outcome(wire);
        }
        Ok(reply.into_bytes())
    }
}

/// serde_json appends " at line 1 column 42": positions in JSON the host generated, which
/// mean nothing to the operator who wrote TOML.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

#[cfg(target_arch = "wasm32")]
mod exported {
    use std::any::Any;
    use std::cell::RefCell;

    thread_local! {
        /// The one plugin instance of this wasm instance (wasm is single-threaded).
        pub(super) static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }
}

/// The `init` export, generic over the plugin type; called by the [`plugin`](crate::plugin) glue.
pub fn export_init<P: Plugin>(config: String) -> Result<crate::__private::Manifest, String> {
    // A panic aborts the instance; its message goes to the host first, which puts it in
    // the failure reason (dead-letter entries, `weir test`, logs).
    #[cfg(target_arch = "wasm32")]
    std::panic::set_hook(Box::new(|info| {
        crate::log(
            crate::Level::Error,
            &info.to_string().replace(":\n", ": ").replace('\n', " "),
        )
    }));
    let instance = Instance::<P>::new(&config)?;
    let manifest = crate::__private::Manifest {
        reads: instance.reads().to_vec(),
        finds_keys: instance.find_keys().to_vec(),
    };
    #[cfg(target_arch = "wasm32")]
    exported::INSTANCE.with(|cell| *cell.borrow_mut() = Some(Box::new(instance)));
    Ok(manifest)
}

/// The `process` export, generic over the plugin type; called by the [`plugin`](crate::plugin) glue.
pub fn export_process<P: Plugin>(batch: Vec<u8>) -> Result<Vec<u8>, String> {
    #[cfg(target_arch = "wasm32")]
    {
        exported::INSTANCE.with(|cell| {
            let mut slot = cell.borrow_mut();
            let instance = slot
                .as_mut()
                .and_then(|b| b.downcast_mut::<Instance<P>>())
                .ok_or_else(|| "process called before a successful init".to_string())?;
            instance.process(&batch)
        })
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = batch;
        Err("the wasm exports only run inside the Weir host; use weir_sdk::testing natively".into())
    }
}
