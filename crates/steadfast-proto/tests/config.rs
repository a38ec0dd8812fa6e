//! A configuration the peer would reject is refused where it is made, in words.

use std::time::Instant;

use steadfast_proto::{Config, Connection, Keepalive, Role};

fn refused(change: impl FnOnce(&mut Config)) -> (String, String) {
    let mut config = Config::default();
    change(&mut config);
    let error = Connection::new(Role::Client, config, Instant::now()).expect_err("refused");
    (error.field().to_owned(), error.to_string())
}

#[test]
fn values_a_peer_would_reject_are_refused_with_the_field_and_the_rule() {
    let (field, text) = refused(|c| c.max_frame_size = 1000);
    assert_eq!(field, "max_frame_size");
    assert!(text.contains("= 1000") && text.contains("16,384"), "{text}");
    assert!(text.contains("PROTOCOL_ERROR"), "{text}");
    let (field, text) = refused(|c| c.max_frame_size = 1 << 24);
    assert_eq!(field, "max_frame_size", "{text}");
    let (field, text) = refused(|c| c.initial_stream_window = 1 << 31);
    assert_eq!(field, "initial_stream_window");
    assert!(text.contains("FLOW_CONTROL_ERROR"), "{text}");
    let (field, _) = refused(|c| c.initial_connection_window = u32::MAX);
    assert_eq!(field, "initial_connection_window");
    let (field, _) = refused(|c| c.window_update_percent = 0);
    assert_eq!(field, "window_update_percent");
    let (field, _) = refused(|c| c.max_transmit_data = 0);
    assert_eq!(field, "max_transmit_data");
    let (field, _) = refused(|c| c.keepalive = Some(Keepalive::new(std::time::Duration::ZERO)));
    assert_eq!(field, "keepalive");
}

#[test]
fn the_defaults_and_the_extremes_the_rfc_allows_are_accepted() {
    for config in [Config::default(), Config::server()] {
        assert_eq!(config.validate(), Ok(()));
    }
    let mut config = Config::default();
    config.max_frame_size = (1 << 24) - 1;
    config.initial_stream_window = (1 << 31) - 1;
    config.initial_connection_window = (1 << 31) - 1;
    assert!(Connection::new(Role::Server, config, Instant::now()).is_ok());
}
