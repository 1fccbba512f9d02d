//! The README and the pages under docs/: every relative link reaches a file of the repository,
//! every `#anchor` a heading of the page it points to (by GitHub's rules: comrak is a port of
//! GitHub's Markdown parser, with its anchorizer), and the README's map reaches every page.
//! Needs no server and no component.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};

use comrak::nodes::NodeValue;
use comrak::{Anchorizer, Arena, Options, parse_document};

/// What the checks need of one Markdown file: its link targets and its headings' anchors.
struct Page {
    links: Vec<String>,
    anchors: HashSet<String>,
}

impl Page {
    fn parse(markdown: &str) -> Page {
        let arena = Arena::new();
        let mut options = Options::default();
        // GitHub's extensions that can hold links or headings.
        options.extension.table = true;
        options.extension.strikethrough = true;
        options.extension.tasklist = true;
        let root = parse_document(&arena, markdown, &options);
        let mut anchorizer = Anchorizer::new();
        let mut page = Page {
            links: Vec::new(),
            anchors: HashSet::new(),
        };
        for node in root.descendants() {
            match &node.data().value {
                NodeValue::Heading(_) => {
                    page.anchors
                        .insert(anchorizer.anchorize(&node.collect_text()));
                }
                NodeValue::Link(link) | NodeValue::Image(link) => page.links.push(link.url.clone()),
                _ => {}
            }
        }
        page
    }
}

fn repository_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_owned()
}

/// The README and every page under docs/, by path relative to `root`.
fn documentation(root: &Path) -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    let docs = std::fs::read_dir(root.join("docs")).expect("a docs/ directory");
    let mut names: Vec<PathBuf> = docs
        .map(|entry| entry.expect("a readable docs/").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .map(|path| Path::new("docs").join(path.file_name().unwrap()))
        .collect();
    names.sort();
    pages.extend(names);
    pages
}

/// `path` with `.` and `..` resolved lexically; `None` when it climbs out of its root.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Every broken link among `pages` (paths relative to `root`), one line each.
fn broken_links(root: &Path, pages: &[PathBuf]) -> Vec<String> {
    let mut parsed: BTreeMap<PathBuf, Page> = BTreeMap::new();
    let mut problems = Vec::new();
    for page in pages {
        match std::fs::read_to_string(root.join(page)) {
            Ok(text) => {
                parsed.insert(page.clone(), Page::parse(&text));
            }
            Err(e) => problems.push(format!("{}: cannot read: {e}", page.display())),
        }
    }
    // Pages linked to that are not in `pages` (such as a crate's README), parsed on demand.
    let mut others: BTreeMap<PathBuf, Option<Page>> = BTreeMap::new();
    for (page, content) in &parsed {
        for url in &content.links {
            if url.contains("://") || url.starts_with("mailto:") {
                continue; // External: not checked (no network in tests).
            }
            let (file, anchor) = match url.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (url.as_str(), None),
            };
            let target = if file.is_empty() {
                Some(page.clone())
            } else {
                normalise(&page.parent().unwrap_or(Path::new("")).join(file))
            };
            let Some(target) = target else {
                problems.push(format!(
                    "{}: {url}: points outside the repository",
                    page.display()
                ));
                continue;
            };
            if !root.join(&target).exists() {
                problems.push(format!(
                    "{}: {url}: no such file {}",
                    page.display(),
                    target.display()
                ));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            let anchors = match parsed.get(&target) {
                Some(content) => Some(&content.anchors),
                None => others
                    .entry(target.clone())
                    .or_insert_with(|| {
                        let is_markdown = target.extension().is_some_and(|e| e == "md");
                        is_markdown
                            .then(|| std::fs::read_to_string(root.join(&target)).ok())
                            .flatten()
                            .map(|text| Page::parse(&text))
                    })
                    .as_ref()
                    .map(|content| &content.anchors),
            };
            match anchors {
                Some(anchors) if anchors.contains(anchor) => {}
                Some(_) => problems.push(format!(
                    "{}: {url}: {} has no heading with the anchor #{anchor}",
                    page.display(),
                    target.display()
                )),
                None => problems.push(format!(
                    "{}: {url}: #{anchor} points into {}, which is not a Markdown page",
                    page.display(),
                    target.display()
                )),
            }
        }
    }
    problems
}

#[test]
fn links_between_the_readme_and_the_docs_pages_resolve() {
    let root = repository_root();
    let pages = documentation(&root);
    assert!(pages.len() > 1, "no pages under docs/");
    let problems = broken_links(&root, &pages);
    assert!(
        problems.is_empty(),
        "{} broken link(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_readme_links_to_every_docs_page() {
    let root = repository_root();
    let readme = Page::parse(&std::fs::read_to_string(root.join("README.md")).unwrap());
    let linked: HashSet<PathBuf> = readme
        .links
        .iter()
        .filter_map(|url| normalise(Path::new(url.split('#').next().unwrap_or_default())))
        .collect();
    let missing: Vec<String> = documentation(&root)
        .into_iter()
        .skip(1)
        .filter(|page| !linked.contains(page))
        .map(|page| page.display().to_string())
        .collect();
    assert!(missing.is_empty(), "not in the README's map: {missing:?}");
}

#[test]
fn broken_files_and_anchors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "# Front door\n\nSee [the `wasi:keyvalue` page](docs/kv.md#atomic-updates-on-s3), \
         [a heading](#front-door), [gone](docs/gone.md), [missing](docs/kv.md#no-such-part), \
         [up](../outside.md) and [a section](#front-door-1).\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docs/kv.md"),
        "# `wasi:keyvalue`\n\n## Atomic updates on S3\n\nBack to [the README](../README.md#front-door) \
         and [here](#wasikeyvalue).\n",
    )
    .unwrap();
    let pages = [PathBuf::from("README.md"), PathBuf::from("docs/kv.md")];
    let problems = broken_links(dir.path(), &pages);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems[0].contains("docs/gone.md: no such file"),
        "{problems:#?}"
    );
    assert!(
        problems[1].contains("no heading with the anchor #no-such-part"),
        "{problems:#?}"
    );
    assert!(
        problems[2].contains("points outside the repository"),
        "{problems:#?}"
    );
    assert!(problems[3].contains("#front-door-1"), "{problems:#?}");
}
