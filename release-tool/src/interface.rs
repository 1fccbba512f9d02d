//! What a component imports and exports, by the names in its outermost import and export
//! sections (nested components and modules, as a composition has, are not looked into).

use anyhow::{Context, Result};
use wasmparser::{Parser, Payload};

/// Import and export names, in the component's own order.
pub struct Interface {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

pub fn of(wasm: &[u8]) -> Result<Interface> {
    let mut interface = Interface {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.context("not a WebAssembly binary")? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    interface.imports.push(import?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    interface.exports.push(export?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(interface)
}
