//! Tailed lines into the buffer, one record per line.

use std::os::unix::ffi::OsStrExt;

use hydra_buffer::Buffer;
use hydra_config::{Config, Input, TailInput};
use hydra_forward::EventTime;
use hydra_tail::{LongLines, Source, TailConfig, Tailer};
use tokio::task::JoinHandle;

use crate::{hostname, join_tag};

struct Meta {
    tag: String,
    field: String,
    path_key: Option<String>,
    host_key: Option<String>,
}

/// The tag of each tail input, in source order.
pub(crate) fn tags(config: &Config) -> Vec<String> {
    config
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Tail(t) => Some(join_tag(config.tag_prefix.as_deref(), &t.tag)),
            Input::Forward(_) => None,
        })
        .collect()
}

pub(crate) fn start(
    config: &Config,
    inputs: &[&TailInput],
    buffer: Buffer,
) -> Result<(Tailer, JoinHandle<()>), hydra_tail::Error> {
    // One tailer for all inputs; the strictest timing settings win.
    let first = inputs[0];
    let tail_config = TailConfig {
        sources: inputs
            .iter()
            .map(|t| Source {
                include: t.path.to_vec(),
                exclude: t.exclude.clone(),
                read_from_head: t.read_from_head,
            })
            .collect(),
        max_line_bytes: inputs
            .iter()
            .map(|t| t.max_line_bytes.as_usize())
            .max()
            .unwrap_or(256 << 10),
        long_lines: match first.long_lines {
            hydra_config::LongLines::Truncate => LongLines::Truncate,
            hydra_config::LongLines::Skip => LongLines::Skip,
        },
        strip_cr: first.strip_cr,
        partial_flush: inputs.iter().filter_map(|t| t.partial_flush).min(),
        rotate_wait: inputs
            .iter()
            .map(|t| t.rotate_wait)
            .max()
            .unwrap_or(first.rotate_wait),
        refresh_interval: inputs
            .iter()
            .map(|t| t.refresh_interval)
            .min()
            .unwrap_or(first.refresh_interval),
        poll_interval: inputs
            .iter()
            .map(|t| t.poll_interval)
            .min()
            .unwrap_or(first.poll_interval),
        use_inotify: inputs.iter().all(|t| t.inotify),
        positions: config.positions.clone(),
        ..TailConfig::default()
    };
    let (tailer, mut batches) = Tailer::start(tail_config)?;
    let committer = tailer.committer();
    let host = hostname();
    let metas: Vec<Meta> = inputs
        .iter()
        .map(|t| Meta {
            tag: join_tag(config.tag_prefix.as_deref(), &t.tag),
            field: t
                .field_name
                .clone()
                .unwrap_or_else(|| config.field_name.clone()),
            path_key: t.path_key.clone(),
            host_key: t.host_key.clone(),
        })
        .collect();
    let task = tokio::spawn(async move {
        while let Some(batch) = batches.recv().await {
            let Some(meta) = metas.get(batch.source) else {
                continue;
            };
            // One clock reading per batch, not per line.
            let time = EventTime::from_system_time(batch.read_at);
            let n = batch.lines.len();
            let estimate = batch.lines.bytes() + n * (24 + meta.field.len());
            let (file, end) = (batch.file, batch.end_offset);
            let c = committer.clone();
            let commit: hydra_buffer::Commit = Box::new(move || c.commit(file, end));
            let path = batch.path.as_os_str().as_bytes().to_vec();
            let appended = buffer
                .append(&meta.tag, estimate, n, Some(commit), |f| {
                    if meta.path_key.is_none() && meta.host_key.is_none() {
                        for line in batch.lines.iter() {
                            f.push_line(time, &meta.field, line);
                        }
                    } else {
                        let mut fields: Vec<(&str, &[u8])> = vec![(&meta.field, &[])];
                        if let Some(k) = &meta.path_key {
                            fields.push((k, &path));
                        }
                        if let Some(k) = &meta.host_key {
                            fields.push((k, host.as_bytes()));
                        }
                        for line in batch.lines.iter() {
                            fields[0].1 = line;
                            f.push_fields(time, &fields);
                        }
                    }
                })
                .await;
            if appended.is_err() {
                // The buffer closed for shutdown: these lines were not
                // accepted, so their offset is not committed.
                break;
            }
        }
    });
    Ok((tailer, task))
}
