//! Other builds of the same rule, for exercising the rule lifecycle: the
//! bytes of a build with a custom section appended. Its sha256 differs, so
//! the engine sees a new version; its code does not, so it decides exactly
//! as the original does.

/// `wasm` with a custom section appended: section id 0, the section's size,
/// then the name (its length first) and the payload. Sizes are unsigned
/// LEB128, as everywhere in the binary format.
pub fn with_custom_section(wasm: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut contents = Vec::with_capacity(name.len() + payload.len() + 5);
    leb128(&mut contents, name.len() as u64);
    contents.extend_from_slice(name.as_bytes());
    contents.extend_from_slice(payload);
    let mut out = Vec::with_capacity(wasm.len() + contents.len() + 6);
    out.extend_from_slice(wasm);
    out.push(0);
    leb128(&mut out, contents.len() as u64);
    out.extend_from_slice(&contents);
    out
}

/// Another build of the rule in `wasm`, told apart by `tag`.
pub fn variant(wasm: &[u8], tag: &str) -> Vec<u8> {
    with_custom_section(wasm, "enforcer-variant", tag.as_bytes())
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_well_formed() {
        let module = wat::parse_str("(module)").unwrap();
        let tagged = variant(&module, &"x".repeat(200));
        let mut sections = 0;
        for payload in wasmparser::Parser::new(0).parse_all(&tagged) {
            if let wasmparser::Payload::CustomSection(reader) = payload.unwrap() {
                assert_eq!(reader.name(), "enforcer-variant");
                assert_eq!(reader.data(), "x".repeat(200).as_bytes());
                sections += 1;
            }
        }
        assert_eq!(sections, 1);
    }
}
