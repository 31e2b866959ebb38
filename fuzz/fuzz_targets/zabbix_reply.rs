//! The Zabbix reply and request parsers on arbitrary bytes: an error, never
//! a panic, and never more than the limit inflated.
#![no_main]

use hydra_zabbix::{Reply, decode_reply, decode_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Reply::Value(v) | Reply::NotSupported(v)) = decode_reply(data, 4096) {
        assert!(v.len() <= 4096 * 3);
    }
    let _ = decode_request(data, 4096);
});
