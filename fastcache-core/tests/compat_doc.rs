//! `docs/compatibility.md` lists every supported command: this test keeps
//! the document and the command table in step.

use fastcache_core::Engine;

#[test]
fn every_command_is_documented() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/compatibility.md");
    let doc = std::fs::read_to_string(path)?.to_ascii_uppercase();
    let engine = Engine::default();
    let missing: Vec<&str> = engine
        .commands()
        .iter()
        .map(|c| c.name)
        .filter(|name| !doc.contains(&format!("`{}`", name.to_ascii_uppercase())))
        .collect();
    assert!(missing.is_empty(), "docs/compatibility.md does not list: {missing:?}");
    Ok(())
}
