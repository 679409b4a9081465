//! Misuse that the type system rejects. Each file under `tests/ui/` names the requirement it
//! enforces at compile time; the expected compiler output sits beside it (`*.stderr`).
//!
//! Regenerate the expected output after a compiler upgrade with `TRYBUILD=overwrite`.

#[test]
fn misuse_does_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
