//! A property test of the isolation pass: whatever a rule writes, wherever
//! and however (plain stores of every width, `memory.fill`, `memory.copy`,
//! a global), the next call on the warm instance sees memory exactly as a
//! fresh instance does.
//!
//! Each generated rule hashes its whole memory page before writing
//! anything and returns 20 bits of the hash as its score. If any byte of
//! any write survived into the next call, the score would change.

use enforcer::runtime::{Runtime, RuntimeConfig};
use enforcer::state::FixedState;
use proptest::prelude::*;

use crate::common::{sent, shared, wat_rule};

/// One write the generated rule makes on every call.
#[derive(Clone, Debug)]
enum Write {
    /// `store` instruction, value and an address (the store's width fits).
    Store(&'static str, u64, u32),
    /// `memory.fill` of `len` bytes at `at`.
    Fill { at: u32, byte: u8, len: u32 },
    /// `memory.copy` of `len` bytes from `from` to `to`.
    Copy { to: u32, from: u32, len: u32 },
}

const PAGE: u32 = 65536;

fn write() -> impl Strategy<Value = Write> {
    let store = prop_oneof![
        Just(("i32.store8", 1)),
        Just(("i32.store16", 2)),
        Just(("i32.store", 4)),
        Just(("i64.store32", 4)),
        Just(("i64.store", 8)),
        Just(("f64.store", 8)),
    ];
    // A third of the addresses sit just below a 1 KiB boundary, where a
    // wide store spills into the next block: the case the reset's straddle
    // slack exists for.
    let address = prop_oneof![
        2 => 0..PAGE,
        1 => (1..PAGE / 1024, 1u32..8).prop_map(|(block, back)| block * 1024 - back),
    ];
    prop_oneof![
        4 => (store, any::<u64>(), address).prop_map(|((op, width), value, at)| {
            Write::Store(op, value, at.min(PAGE - width))
        }),
        1 => (0..PAGE, any::<u8>(), 0u32..4096).prop_map(|(at, byte, len)| Write::Fill {
            at: at.min(PAGE - len),
            byte,
            len,
        }),
        1 => (0..PAGE, 0..PAGE, 0u32..4096).prop_map(|(to, from, len)| Write::Copy {
            to: to.min(PAGE - len),
            from: from.min(PAGE - len),
            len,
        }),
    ]
}

fn as_wat(write: &Write) -> String {
    match write {
        Write::Store(op, value, at) => {
            let value = match *op {
                "f64.store" => format!(
                    "f64.const {}",
                    f64::from_bits(*value & 0x3FFF_FFFF_FFFF_FFFF)
                ),
                op if op.starts_with("i64") => format!("i64.const {}", *value as i64),
                _ => format!("i32.const {}", *value as i32),
            };
            format!("i32.const {at} {value} {op}\n")
        }
        Write::Fill { at, byte, len } => {
            format!("i32.const {at} i32.const {byte} i32.const {len} memory.fill\n")
        }
        Write::Copy { to, from, len } => {
            format!("i32.const {to} i32.const {from} i32.const {len} memory.copy\n")
        }
    }
}

/// A rule that hashes its memory, then makes `writes` and bumps a global.
fn rule(writes: &[Write]) -> Vec<u8> {
    let writes: String = writes.iter().map(as_wat).collect();
    let functions = format!(
        r#"(global $calls (mut i64) (i64.const 0))
  (func $hash (result f64) (local $at i32) (local $h i64)
    i64.const 1469598103934665603 local.set $h
    (loop $next
      local.get $h global.get $calls i64.xor
      local.get $at i64.load i64.xor
      i64.const 1099511628211 i64.mul local.set $h
      local.get $at i32.const 8 i32.add local.tee $at
      i32.const {PAGE} i32.lt_u br_if $next)
    local.get $h i64.const 44 i64.shr_u f64.convert_i64_u f64.const 1048576 f64.div)
  (func $write
    {writes}
    global.get $calls i64.const 1 i64.add global.set $calls)"#
    );
    wat_rule("wat-writes", &functions, "call $hash call $write")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_call_sees_memory_as_a_fresh_instance_would(
        writes in proptest::collection::vec(write(), 1..24)
    ) {
        let wasm = rule(&writes);
        let state = shared(FixedState::new());
        let fresh = Runtime::with_config(RuntimeConfig {
            reuse_instances: false,
            ..RuntimeConfig::default()
        })
        .unwrap()
        .load(&wasm)
        .unwrap();
        let expected = fresh.evaluate(&sent("first", "a", 1), &state).result.unwrap().score;

        let warm = Runtime::new().unwrap().load(&wasm).unwrap();
        for call in 0..4 {
            let event = sent(&format!("call-{call}"), "a", call);
            let score = warm.evaluate(&event, &state).result.unwrap().score;
            prop_assert_eq!(score, expected, "call {} saw an earlier call's writes", call);
        }
    }
}
