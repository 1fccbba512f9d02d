//! Large values through the component, and the runtime's memory settings: functional checks
//! only. How much memory and time they take is measured, not tested: see
//! `s3-result-store memory` and `s3-result-store coldstart`.

use std::sync::OnceLock;

use s3_result_store_host::{
    Error, PoolingOptions, Runtime, RuntimeOptions, StoreError, default_component_path,
};
use s3_result_store_tests::{TestServer, embedded_server, runtime, server, unique_prefix};

const MIB: usize = 1 << 20;

/// Incompressible, position-dependent bytes: a value that was cut, shifted or mixed up with
/// another cannot compare equal.
fn pattern(size: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ seed;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(size);
    out
}

fn round_trip(runtime: &Runtime, server: &TestServer, test: &str, size: usize) {
    let mut store = runtime.open(&server.config(&unique_prefix(test))).unwrap();
    let value = pattern(size, size as u64);
    store.set("big", &value).unwrap();
    let got = store.get("big").unwrap().expect("the value just set");
    // Not assert_eq!: a failure would print 64 MiB.
    assert_eq!(got.len(), value.len(), "length of the value read back");
    assert!(got == value, "the value read back differs from the one set");
    assert!(
        store.guest_memory_peak() >= size,
        "the value passed through the instance's memory"
    );
    store.delete("big").unwrap();
}

#[test]
fn a_64_mib_value_round_trips_byte_exactly() {
    round_trip(runtime(), server(), "a_64_mib_value_round_trips", 64 * MIB);
}

/// wasmtime refuses, by default, to copy more than 128 MiB out of an instance in one call:
/// the runtime raises that bound so that `get` reaches the default max-value-bytes (256 MiB).
/// A property of the host, so against the embedded server only.
#[test]
fn a_value_over_128_mib_comes_back_too() {
    round_trip(
        runtime(),
        embedded_server(),
        "a_value_over_128_mib",
        129 * MIB,
    );
}

/// The component compiled once by `Runtime::precompile`.
fn precompiled() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| Runtime::precompile(default_component_path()).unwrap())
}

/// The precompiled component, loaded into a runtime with the pooling allocator.
fn pooled() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let options = RuntimeOptions::new().pooling(PoolingOptions {
            max_instances: 8,
            max_memory_bytes: 192 << 20,
            keep_resident_bytes: 0,
        });
        Runtime::from_precompiled(precompiled(), &options).unwrap()
    })
}

#[test]
fn a_64_mib_value_round_trips_through_a_pooled_precompiled_runtime() {
    round_trip(pooled(), embedded_server(), "pooled_64_mib", 64 * MIB);
}

#[test]
fn a_pooled_store_refuses_a_max_value_its_memory_cannot_hold() {
    let mut config = embedded_server().config(&unique_prefix("pooled_refuses"));
    config.max_value_bytes = Some(97 << 20);
    match pooled().open(&config) {
        Err(Error::Store(StoreError::InvalidConfig(m))) => {
            assert!(m.contains("max-value-bytes"), "{m}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a 97 MiB max-value-bytes was accepted with 192 MiB of memory"),
    }
    // Unset, it defaults to what fits: half the memory.
    config.max_value_bytes = None;
    let mut store = pooled().open(&config).unwrap();
    let too_big = vec![0u8; 96 * MIB + 1];
    match store.set("k", &too_big) {
        Err(Error::Store(StoreError::ValueTooLarge(_))) => {}
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
}

#[test]
fn pooled_slots_are_reused_after_stores_are_dropped() {
    let config = embedded_server().config(&unique_prefix("pooled_reuse"));
    // More stores, one after the other, than the pool has slots.
    for _ in 0..20 {
        let mut store = pooled().open(&config).unwrap();
        store.set("k", b"v").unwrap();
    }
}

#[test]
fn a_damaged_or_foreign_precompiled_component_is_refused() {
    let options = RuntimeOptions::new();
    let precompiled = precompiled();
    let refused = |bytes: &[u8]| match Runtime::from_precompiled(bytes, &options) {
        Err(Error::Runtime(e)) => e.to_string(),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("loaded"),
    };
    let mut damaged = precompiled.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(refused(&damaged).contains("damaged"));
    assert!(refused(&precompiled[..precompiled.len() / 2]).contains("damaged"));
    let wasm = std::fs::read(default_component_path()).unwrap();
    assert!(refused(&wasm).contains("not a precompiled"));
    let mut other_engine = precompiled.to_vec();
    other_engine[8] ^= 1;
    assert!(refused(&other_engine).contains("another wasmtime"));
}
