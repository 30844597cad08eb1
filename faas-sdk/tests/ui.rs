//! `#[faas::handler]`: the supported shapes compile, misuse fails with errors pointing at the
//! user's code (trybuild; refresh the expected output with `TRYBUILD=overwrite`).

#[test]
fn handler_macro() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
