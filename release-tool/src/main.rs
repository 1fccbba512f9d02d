//! `s3rs-release`: the last step of `scripts/release`, once cargo and wac have built the
//! components. Stamps each with the release's metadata, encodes the WIT package, and writes
//! `SHA256SUMS` and `manifest.json` beside them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use s3_result_store_release::manifest::{Entry, Release};
use s3_result_store_release::{artifacts, interface, manifest, stamp, wit_package};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "s3rs-release", about)]
struct Cli {
    /// Where the release's files go (an existing, empty directory).
    #[arg(long)]
    out: PathBuf,
    /// The workspace's version: the WIT package must carry the same one.
    #[arg(long)]
    version: String,
    /// The git commit the components were built from.
    #[arg(long)]
    revision: String,
    /// The source repository's URL.
    #[arg(long)]
    source: String,
    /// The SPDX license expression.
    #[arg(long)]
    licenses: String,
    /// The WIT package's directory.
    #[arg(long)]
    wit: PathBuf,
    /// A built component, FLAVOUR=PATH; every flavour once (default, store-only, tasks,
    /// keyvalue, task-status).
    #[arg(long = "component", value_name = "FLAVOUR=PATH", value_parser = pair)]
    components: Vec<(String, String)>,
    /// A tool the components were built with, NAME=VERSION (recorded in the manifest).
    #[arg(long = "built-with", value_name = "NAME=VERSION", value_parser = pair)]
    built_with: Vec<(String, String)>,
}

fn pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut entries = Vec::new();
    for component in artifacts::COMPONENTS {
        let given: Vec<_> = cli
            .components
            .iter()
            .filter(|(flavour, _)| flavour == component.flavour)
            .collect();
        let [(_, path)] = given[..] else {
            bail!("give --component {}=PATH once", component.flavour);
        };
        entries.push(component_entry(&cli, component, Path::new(path))?);
    }
    if let Some((unknown, _)) = cli
        .components
        .iter()
        .find(|(flavour, _)| artifacts::component(flavour).is_none())
    {
        bail!("no such flavour: {unknown}");
    }
    entries.push(wit_entry(&cli)?);
    let release = Release {
        version: &cli.version,
        revision: &cli.revision,
        source: &cli.source,
        licenses: &cli.licenses,
        built_with: &cli.built_with,
    };
    manifest::write(&cli.out, &release, &entries)
}

fn component_entry(cli: &Cli, component: &artifacts::Component, path: &Path) -> Result<Entry> {
    let built = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = stamp::stamp(
        &built,
        &stamp::Stamp {
            name: Some(component.name),
            version: &cli.version,
            description: component.description,
            licenses: &cli.licenses,
            source: &cli.source,
            revision: &cli.revision,
        },
    )
    .with_context(|| format!("{}", path.display()))?;
    let interface = interface::of(&bytes)?;
    let details = json!({
        "kind": "component",
        "flavour": component.flavour,
        "name": component.name,
        "exports": interface.exports,
        "imports": interface.imports,
    });
    Ok(Entry {
        file: artifacts::component_file(component.name, &cli.version),
        bytes,
        details: object(details),
    })
}

fn wit_entry(cli: &Cli) -> Result<Entry> {
    let package = wit_package::encode(&cli.wit)?;
    if package.version.as_deref() != Some(cli.version.as_str()) {
        bail!(
            "the versions disagree: the WIT package is {} and the workspace {}",
            package.id,
            cli.version
        );
    }
    let bytes = stamp::stamp(
        &package.bytes,
        &stamp::Stamp {
            name: None,
            version: &cli.version,
            description: artifacts::WIT_PACKAGE_DESCRIPTION,
            licenses: &cli.licenses,
            source: &cli.source,
            revision: &cli.revision,
        },
    )
    .context("the WIT package")?;
    // What wkg will read back: stamping must leave a package it can decode.
    let decoded = wit_package::package_of(&bytes)?;
    if decoded != package.id {
        bail!(
            "the stamped WIT package reads as {decoded}, not {}",
            package.id
        );
    }
    let details = json!({
        "kind": "wit-package",
        "package": package.id,
        "interfaces": package.interfaces,
        "worlds": package.worlds,
    });
    Ok(Entry {
        file: artifacts::wit_package_file(&cli.version),
        bytes,
        details: object(details),
    })
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object"),
    }
}
