//! The embedding example, end to end: a service's own output and input
//! in the agent, with a Forward client's ack and the input's commits
//! flowing back through them.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

#[path = "../examples/embedded.rs"]
mod embedded;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_own_output_and_input_deliver_acks_and_commits() {
    let port = hydra_test_support::free_port();
    let seen = embedded::run(port).await;
    assert_eq!(
        seen,
        embedded::Seen {
            app: 3,
            heartbeats: 5,
            committed: 5,
            acked: true
        }
    );
}
