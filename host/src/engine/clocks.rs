//! The clocks a plugin sees, and how long it may sleep on them. wasmtime-wasi's own
//! `subscribe-duration` sleeps in the host for as long as the guest asks, in a host call
//! the epoch deadline cannot interrupt: `std::thread::sleep` (no grant needed) held a
//! worker past any deadline, for good when endless, and in `init` it held a reload. Here
//! a sleep ends by the call's deadline, and at once for a plugin without a clock grant
//! (its clocks are frozen, so it cannot tell). Once the deadline has passed, the guest's
//! next epoch check stops it.

use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use super::state::PluginState;

/// The interface whose sleeps are replaced: the version wasmtime-wasi 48 registers, so
/// these definitions shadow its own (guests importing any 0.2.x resolve to it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A sleep that ends at `until`, or at once.
struct Sleep(Option<tokio::time::Instant>);

#[wasmtime_wasi::async_trait]
impl Pollable for Sleep {
    async fn ready(&mut self) {
        if let Some(until) = self.0 {
            tokio::time::sleep_until(until).await;
        }
    }
}

/// Replaces `subscribe-duration` and `subscribe-instant` in `linker`, after WASI's.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, PluginState>, (nanos,): (u64,)| {
            Ok((sleep(store.data_mut(), Duration::from_nanos(nanos))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, PluginState>, (when,): (u64,)| {
            let state = store.data_mut();
            let now = state.monotonic().map_or(0, |c| c.now());
            let wait = Duration::from_nanos(when.saturating_sub(now));
            Ok((sleep(state, wait)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A pollable for a sleep of `wait`, cut to the current call's deadline. A sleep past
/// the deadline marks the call as over it (`overslept`): it fails as a deadline, even
/// if the guest returns before the next epoch check would have stopped it.
fn sleep(state: &mut PluginState, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
    let until = match state.monotonic() {
        Some(_) => {
            let wanted = Instant::now().checked_add(wait);
            if wanted.is_none_or(|w| w > state.deadline) {
                state.overslept = true;
            }
            let until = wanted.map_or(state.deadline, |w| w.min(state.deadline));
            Some(tokio::time::Instant::from_std(until))
        }
        None => None,
    };
    let table = state.table();
    let sleep = table.push(Sleep(until))?;
    subscribe(table, sleep)
}

/// A real monotonic clock whose origin the host knows (so `subscribe-instant` can turn
/// an instant into a wait): what a plugin granted `clock = true` reads.
#[derive(Debug, Clone, Copy)]
pub struct RealClock {
    start: Instant,
}

impl RealClock {
    /// A clock starting now.
    pub fn new() -> Self {
        RealClock {
            start: Instant::now(),
        }
    }
}

impl HostMonotonicClock for RealClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos().min(u64::MAX as u128) as u64
    }
}

/// A clock stopped at zero: what an ungranted plugin sees.
pub struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}
