//! Build script: rebuild when embedded mapping or config files change.
fn main() {
    // The mapping files and the default config are embedded in the binary.
    println!("cargo:rerun-if-changed=mappings");
    println!("cargo:rerun-if-changed=config");
}
