//! The WebSocket client-message parser on arbitrary text: no panic, and every accepted
//! subscription names a valid channel.
#![no_main]

use compliance_axum::ws::protocol::{validate_channel, ClientMessage, MAX_CHANNEL_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientMessage::parse(text) {
        Ok(ClientMessage::Subscribe { channel, .. } | ClientMessage::Unsubscribe { channel }) => {
            assert!(!channel.is_empty() && channel.len() <= MAX_CHANNEL_LEN);
            assert!(validate_channel(&channel).is_ok());
        }
        Ok(ClientMessage::Ping) => {}
        Err(message) => assert!(!message.is_empty()),
    }
});
