//! Replies captured from the real zabbix_agentd and zabbix_agent2, and the
//! real zabbix_get's requests.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use hydra_zabbix::{Reply, decode_reply, encode_reply, encode_request};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn requests_are_byte_for_byte_zabbix_gets() {
    for (stem, key) in [
        ("agent_ping", "agent.ping"),
        ("system_uptime", "system.uptime"),
        ("no_such_key", "no.such.key"),
        ("system_uptime_extra", "system.uptime[extra]"),
    ] {
        for agent in ["agentd", "agent2"] {
            assert_eq!(
                encode_request(key),
                fixture(&format!("{agent}_{stem}.c2s.bin")),
                "{agent} {key}"
            );
        }
    }
}

#[test]
fn replies_from_both_agents() {
    let r = |n: &str| decode_reply(&fixture(n), 1 << 20).unwrap();
    assert_eq!(r("agentd_agent_ping.s2c.bin"), Reply::Value("1".into()));
    assert_eq!(r("agent2_agent_ping.s2c.bin"), Reply::Value("1".into()));
    assert_eq!(
        r("agentd_system_uptime.s2c.bin"),
        Reply::Value("1169".into())
    );
    // agent2 fills the reserved field: it must not matter.
    assert_eq!(
        r("agent2_system_uptime.s2c.bin"),
        Reply::Value("1169".into())
    );
    assert_eq!(
        r("agentd_no_such_key.s2c.bin"),
        Reply::NotSupported("Unsupported item key.".into())
    );
    assert_eq!(
        r("agent2_no_such_key.s2c.bin"),
        Reply::NotSupported("Unknown metric no.such.key".into())
    );
    assert_eq!(
        r("agentd_system_uptime_extra.s2c.bin"),
        Reply::NotSupported("Item does not allow parameters.".into())
    );
    assert_eq!(
        r("agent2_system_uptime_extra.s2c.bin"),
        Reply::NotSupported("Too many parameters.".into())
    );
    assert_eq!(
        r("agentd_no_such_key.s2c.bin").to_string(),
        "ZBX_NOTSUPPORTED: Unsupported item key."
    );
    // hydra's own replies are zabbix_agentd's bytes.
    assert_eq!(
        encode_reply(&Reply::Value("1".into())),
        fixture("agentd_agent_ping.s2c.bin")
    );
    assert_eq!(
        encode_reply(&Reply::NotSupported("Unsupported item key.".into())),
        fixture("agentd_no_such_key.s2c.bin")
    );
}
