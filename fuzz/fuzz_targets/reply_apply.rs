//! A plugin reply as raw bytes: decoded under the default `ReplyLimits` for a batch of
//! as many events as the first byte says (0-15), and on success each event's edits and
//! outcome settled on a small event and written out, which must stay within the nesting
//! limit and parse back (see `weir_fuzz::reply`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weir_fuzz::handle_stack_overflow();
    let Some((&n, reply)) = data.split_first() else {
        return;
    };
    weir_fuzz::reply::run(reply, usize::from(n % 16));
});
