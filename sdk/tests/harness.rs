//! The native test harness catches what a plugin author would otherwise find only in
//! production: a field read without being declared in `fields()` (on wasm it silently
//! reads nothing), here a panic naming the field and what was declared.

use serde_json::json;
use weir_sdk::testing::Harness;
use weir_sdk::{plugin, Event, Fields, NoConfig, Outcome, Plugin};

/// Declares `level` but also reads `path`.
struct Forgetful;

#[plugin]
impl Plugin for Forgetful {
    type Config = NoConfig;

    fn init(_: NoConfig) -> Result<Self, String> {
        Ok(Forgetful)
    }

    fn fields(&self) -> Fields {
        Fields::new().read("level")
    }

    fn process(&mut self, event: &mut Event<'_>) -> Outcome<'_> {
        if event.get_str("level") == Some("DEBUG") && event.has("path") {
            return Outcome::Drop;
        }
        Outcome::Keep
    }
}

#[test]
fn a_declared_read_works() {
    let mut h = Harness::<Forgetful>::new(json!({})).expect("init");
    assert!(h.run(json!({"level": "INFO", "path": "/x"})).kept());
}

#[test]
#[should_panic(
    expected = "the plugin read `path` but did not declare it in `fields()`; declared: [\"level\"]"
)]
fn an_undeclared_read_panics_in_native_tests() {
    let mut h = Harness::<Forgetful>::new(json!({})).expect("init");
    h.run(json!({"level": "DEBUG", "path": "/x"}));
}
