//! The release's files: one per flavour of the component, the composed edge app, the WIT
//! package, and the two files that describe them.

/// A component the release ships, as `scripts/release` builds it.
pub struct Component {
    /// What `scripts/release` calls it (`--component FLAVOUR=PATH`) and the manifest records.
    pub flavour: &'static str,
    /// The name embedded in the component, its file name's stem and its OCI repository.
    pub name: &'static str,
    pub description: &'static str,
}

/// Every component of a release, in the manifest's order.
pub const COMPONENTS: &[Component] = &[
    Component {
        flavour: "default",
        name: "s3-result-store",
        description: "Celery's S3 result backend as a WebAssembly component: the store, Celery's \
                      tasks and wasi:keyvalue (0.2.0-draft and 0.2.0-draft2), signed S3 \
                      requests over WASI HTTP",
    },
    Component {
        flavour: "store-only",
        name: "s3-result-store-store-only",
        description: "s3-result-store built without features: the result-store:s3 store \
                      interface alone, signed S3 requests over WASI HTTP",
    },
    Component {
        flavour: "tasks",
        name: "s3-result-store-tasks",
        description: "s3-result-store built with the tasks feature: the store and Celery's \
                      result backend (result-store:s3/tasks)",
    },
    Component {
        flavour: "keyvalue",
        name: "s3-result-store-keyvalue",
        description: "s3-result-store built with the keyvalue feature: the store and \
                      wasi:keyvalue (0.2.0-draft and 0.2.0-draft2) over S3",
    },
    Component {
        flavour: "task-status",
        name: "task-status",
        description: "Example edge app (wasi:http/proxy): Celery task status over HTTP, composed \
                      with the s3-result-store component (tasks build); imports only WASI",
    },
];

/// The component of `flavour`, if there is one.
pub fn component(flavour: &str) -> Option<&'static Component> {
    COMPONENTS.iter().find(|c| c.flavour == flavour)
}

/// `s3-result-store-0.1.0.wasm`.
pub fn component_file(name: &str, version: &str) -> String {
    format!("{name}-{version}.wasm")
}

/// The binary WIT package, `result-store-s3-0.1.0.wit.wasm`.
pub fn wit_package_file(version: &str) -> String {
    format!("result-store-s3-{version}.wit.wasm")
}

/// What the WIT package's metadata says it is.
pub const WIT_PACKAGE_DESCRIPTION: &str =
    "The WIT package of s3-result-store: the store, Celery's tasks and the worlds of each build";

/// `sha256sum -c` reads it.
pub const SUMS_FILE: &str = "SHA256SUMS";
pub const MANIFEST_FILE: &str = "manifest.json";
