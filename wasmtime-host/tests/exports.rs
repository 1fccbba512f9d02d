//! What the host makes of a component's exports: one that exports an interface of this WIT,
//! but not as this WIT has it, is refused when loaded, rather than taken for a build without
//! that interface's feature.

use s3_result_store_host::{Error, Runtime};
use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve};

/// A component of world `world` of wit/ whose functions only trap, after `change` to the WIT.
fn dummy_component(world: &str, change: impl FnOnce(&mut Resolve)) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit"))
        .unwrap();
    change(&mut resolve);
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let mangling = ManglingAndAbi::Legacy(LiftLowerAbi::Sync);
    let mut module = dummy_module(&resolve, world, mangling);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).unwrap();
    ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

fn load(component: &[u8]) -> Result<Runtime, Error> {
    Runtime::from_bytes(component)
}

#[test]
fn a_build_with_or_without_tasks_loads() {
    for world in ["component", "store-only", "store-with-tasks"] {
        let runtime =
            load(&dummy_component(world, |_| {})).unwrap_or_else(|e| panic!("{world}: {e}"));
        let (_, exports) = runtime.interface();
        assert!(
            exports.iter().any(|e| e == "result-store:s3/store@0.1.0"),
            "{world}"
        );
    }
}

#[test]
fn a_tasks_interface_unlike_this_hosts_is_refused_when_loaded() {
    let component = dummy_component("store-with-tasks", |resolve| {
        let (_, tasks) = resolve
            .interfaces
            .iter_mut()
            .find(|(_, i)| i.name.as_deref() == Some("tasks"))
            .unwrap();
        assert!(
            tasks
                .functions
                .shift_remove("[method]task-store.get-meta")
                .is_some()
        );
    });
    match load(&component) {
        Err(Error::Runtime(e)) => {
            let message = format!("{e:#}");
            assert!(message.contains("get-meta"), "{message}");
        }
        Err(other) => panic!("expected a runtime error, got {other}"),
        Ok(_) => panic!("a tasks interface without get-meta was accepted"),
    }
}
