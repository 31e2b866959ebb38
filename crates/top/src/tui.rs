//! The full-screen view.

use std::io::Stdout;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Gauge, Paragraph, Row, Sparkline, Table};
use ratatui::{Frame, backend::Backend};

use crate::client::{Client, Sample};
use crate::view::{self, Options};
use crate::{Error, TopOptions};

/// Puts the terminal back however the view ends, a panic included.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(std::io::stdout(), LeaveAlternateScreen);
    }
}

struct App {
    url: String,
    last: Option<Sample>,
    /// Why the last refresh failed; `None` while connected.
    down: Option<String>,
    options: Options,
    /// Text typed after `/`, not applied yet.
    editing: Option<String>,
}

pub(crate) fn run(client: &Client, opts: &TopOptions) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Terminal)?;
    enable_raw_mode().map_err(Error::Terminal)?;
    let _restore = Restore;
    execute!(std::io::stdout(), EnterAlternateScreen).map_err(Error::Terminal)?;
    let mut terminal: Terminal<CrosstermBackend<Stdout>> =
        Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(Error::Terminal)?;
    let mut app = App {
        url: client.url().to_owned(),
        last: None,
        down: None,
        options: Options::default(),
        editing: None,
    };
    let mut next_fetch = Instant::now();
    loop {
        if Instant::now() >= next_fetch {
            let timeout = opts.interval.max(Duration::from_secs(1));
            match rt.block_on(async { tokio::time::timeout(timeout, client.sample()).await }) {
                Ok(Ok(s)) => {
                    app.last = Some(s);
                    app.down = None;
                }
                Ok(Err(e)) => app.down = Some(e.to_string()),
                Err(_) => app.down = Some("no answer in time".to_owned()),
            }
            next_fetch = Instant::now() + opts.interval;
        }
        draw(&mut terminal, &app)?;
        let wait = next_fetch.saturating_duration_since(Instant::now());
        if !event::poll(wait).map_err(Error::Terminal)? {
            continue;
        }
        match event::read().map_err(Error::Terminal)? {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
                    return Ok(());
                }
                if let Some(text) = app.editing.as_mut() {
                    match k.code {
                        KeyCode::Enter => {
                            app.options.filter = app.editing.take().unwrap_or_default();
                        }
                        KeyCode::Esc => app.editing = None,
                        KeyCode::Backspace => {
                            text.pop();
                        }
                        KeyCode::Char(c) => text.push(c),
                        _ => {}
                    }
                    continue;
                }
                match k.code {
                    KeyCode::Char('q') => return Ok(()),
                    KeyCode::Char('s') => app.options.sort = app.options.sort.next(),
                    KeyCode::Char('/') => app.editing = Some(String::new()),
                    KeyCode::Esc => app.options.filter.clear(),
                    // Refresh now.
                    KeyCode::Char('r') => next_fetch = Instant::now(),
                    _ => {}
                }
            }
            // ratatui resizes its buffers on the next draw.
            _ => {}
        }
    }
}

fn draw<B: Backend>(terminal: &mut Terminal<B>, app: &App) -> Result<(), Error> {
    terminal
        .draw(|f| ui(f, app))
        .map(|_| ())
        .map_err(|e| Error::Terminal(std::io::Error::other(e.to_string())))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn table<const N: usize>(
    title: String,
    columns: [&str; N],
    rows: Vec<[String; N]>,
) -> Table<'static> {
    let widths: Vec<Constraint> = (0..N)
        .map(|i| {
            let w = rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([columns[i].len()])
                .max()
                .unwrap_or(4);
            if i + 1 == N {
                Constraint::Min(5)
            } else {
                Constraint::Length(u16::try_from(w).unwrap_or(u16::MAX))
            }
        })
        .collect();
    let header = Row::new(columns.map(|c| Cell::from(c.to_owned())))
        .style(Style::default().add_modifier(Modifier::BOLD));
    let body: Vec<Row<'static>> = rows
        .into_iter()
        .map(|r| {
            let warn = r.iter().any(|c| c == "down");
            let row = Row::new(r.map(Cell::from));
            if warn {
                row.style(Style::default().fg(Color::Red))
            } else {
                row
            }
        })
        .collect();
    Table::new(body, widths)
        .header(header)
        .block(Block::default().borders(Borders::ALL).title(title))
}

fn ui(f: &mut Frame<'_>, app: &App) {
    let empty = Sample::default();
    let sample = app.last.as_ref().unwrap_or(&empty);
    let s = &sample.snapshot;
    let status = match &app.down {
        None if app.last.is_some() => "connected".to_owned(),
        None => "connecting".to_owned(),
        Some(e) => format!("disconnected: {e}; retrying"),
    };
    let files = view::file_rows(s, &app.options);
    let inputs = view::input_rows(s);
    let servers = view::server_rows(s, &app.options, now());
    let rows_height = |n: usize| u16::try_from(n.max(1) + 3).unwrap_or(u16::MAX);
    let [
        head,
        gauge,
        spark,
        files_area,
        inputs_area,
        servers_area,
        foot,
    ] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length(rows_height(inputs.len())),
        Constraint::Length(rows_height(servers.len())),
        Constraint::Length(1),
    ])
    .areas(f.area());

    let head_style = if app.down.is_some() {
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    };
    f.render_widget(
        Paragraph::new(view::header(&app.url, sample, &status)).style(head_style),
        head,
    );
    let (ratio, label) = view::buffer_line(s);
    f.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label(label)
            .gauge_style(Style::default().fg(Color::Cyan)),
        gauge,
    );
    let history: Vec<u64> = s
        .delivered_history
        .iter()
        .map(|v| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = v.max(0.0).round() as u64;
            n
        })
        .collect();
    f.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::TOP).title(format!(
                "delivered {:.1} events/s (last minute)",
                s.delivered_per_sec
            )))
            .data(&history),
        spark,
    );
    f.render_widget(
        table(
            format!(
                "FILES ({}, sorted by {}{})",
                files.len(),
                app.options.sort.name(),
                if app.options.filter.is_empty() {
                    String::new()
                } else {
                    format!(", filter {:?}", app.options.filter)
                }
            ),
            view::FILE_COLUMNS,
            files,
        ),
        files_area,
    );
    f.render_widget(
        table("FORWARD INPUTS".to_owned(), view::INPUT_COLUMNS, inputs),
        inputs_area,
    );
    f.render_widget(
        table(
            "SERVERS (* = getting traffic)".to_owned(),
            view::SERVER_COLUMNS,
            servers,
        ),
        servers_area,
    );
    let footer = match &app.editing {
        Some(text) => format!("filter: {text}_   (Enter apply, Esc cancel)"),
        None => "q quit   s sort   / filter   Esc clear filter   r refresh".to_owned(),
    };
    f.render_widget(Paragraph::new(Line::from(footer)), foot);
}
