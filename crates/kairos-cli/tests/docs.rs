//! Every link of the README, ARCHITECTURE.md and the docs resolves inside the repository: a
//! clone is the whole reference, and a renamed file cannot leave a reader at a dead end.

mod common;

use std::path::Path;

use common::repo;

/// The targets of a Markdown text's inline links, `[text](target)`.
fn link_targets(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            rest.find(')').map(|end| rest[..end].trim())
        })
        .collect()
}

#[test]
fn every_link_of_the_docs_resolves_inside_the_repository() {
    let root = repo().canonicalize().unwrap();
    let mut pages = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "docs/ holds the guides");
    pages.extend(docs);
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for target in link_targets(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                // Only the product's own pages may be named on the web: none are yet.
                broken.push(format!(
                    "{}: {target}: a link out of the repository",
                    page.display()
                ));
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            if path.is_empty() {
                continue;
            }
            let resolved = page.parent().unwrap().join(path);
            let inside = resolved
                .canonicalize()
                .is_ok_and(|p| p.starts_with(&root) && Path::new(&p).exists());
            if !inside {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that do not resolve in the repository:\n{}",
        broken.join("\n")
    );
}
