//! The mistakes a new user makes with the pipeline's types (and a fallback keeping a copy of
//! requests that cannot be cloned) fail to compile at once, with a
//! message naming the missing trait on the user's own type (the `.stderr` files next to
//! each case are the expected messages).

#[test]
fn pipeline_type_errors_name_the_missing_trait() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
