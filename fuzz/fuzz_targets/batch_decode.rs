//! A batch buffer as the guest SDK decodes it: `BatchReader::new`, then `next_event`
//! until the end or an error. A batch that decodes whole must encode back, through
//! `BatchWriter`, to exactly the bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_wire::{BatchReader, BatchWriter, EventFields, Value};

fuzz_target!(|data: &[u8]| {
    weir_fuzz::handle_stack_overflow();
    let Ok(mut reader) = BatchReader::new(data) else {
        return;
    };
    let (count, slots) = (reader.event_count(), reader.slot_count());
    let mut writer = BatchWriter::new(slots);
    let mut ev = EventFields::default();
    let mut decoded = 0usize;
    loop {
        match reader.next_event(&mut ev) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
        decoded += 1;
        assert!(decoded <= count, "more events than the header's {count}");
        assert_eq!(ev.slots.len(), slots);
        for slot in &ev.slots {
            if let Some(v) = slot {
                touch(*v);
            }
            writer.slot(*slot);
        }
        writer.begin_found();
        for (path, value) in &ev.found {
            touch(*value);
            writer.found_path(path);
            writer.slot(Some(*value));
        }
        writer.end_event();
    }
    assert_eq!(
        decoded, count,
        "stopped before the header's event count without an error"
    );
    let bytes = writer.as_bytes();
    assert!(
        data.starts_with(bytes),
        "a decoded batch does not encode back to the bytes it came from"
    );
});

/// Reads a value every way a plugin can.
fn touch(v: Value<'_>) {
    let _ = (v.as_str(), v.as_f64(), v.as_i64(), v.as_bool());
}
