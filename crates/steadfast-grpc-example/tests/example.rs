//! The README's example runs (CI runs it as a test).

#[path = "../examples/greeter.rs"]
mod greeter;

#[tokio::test]
async fn the_readme_example_runs() {
    tokio::time::timeout(std::time::Duration::from_secs(30), greeter::run())
        .await
        .expect("finished in time")
        .expect("ran");
}
