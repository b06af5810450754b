//! `enforcer bank ...`: the hash banks of a running engine through its
//! control plane (`list`, `replace`, `add`, `remove`, `delete`), from bank
//! files in the format `[[banks]]` loads at start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use enforcer::api::v1;
use enforcer::banks::BankEntry;
use enforcer::banks::file::{DEFAULT_ALLOW_DISTANCE, read_bank_file};
use enforcer::registry::admission::now_ms;

use crate::plugin_command::AdminArgs;

/// Entries sent per message when a bank is replaced: about 3 MB, well
/// inside the control plane's message limit.
const ENTRIES_PER_CHUNK: usize = 20_000;

/// `enforcer bank`'s subcommands.
#[derive(Subcommand)]
pub enum BankCommand {
    /// Every bank and allow-list, with its size.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Create a bank or replace the one of its name with a file's entries.
    /// Lookups switch to the new bank at once when it is indexed.
    Replace {
        #[command(flatten)]
        admin: AdminArgs,
        /// The bank.
        name: String,
        /// The bank file (hex lines or JSON lines).
        file: PathBuf,
        /// What the bank is for.
        #[arg(long, value_enum, default_value_t = KindArg::Match)]
        kind: KindArg,
        /// For a match bank: an allow-list to consult (repeatable).
        #[arg(long = "allow-list", value_name = "BANK")]
        allow_lists: Vec<String>,
        /// For an allow-list: how near (bits) a hash must be to an entry.
        #[arg(long, value_name = "BITS")]
        max_distance: Option<u32>,
    },
    /// Add a file's entries to a bank.
    Add {
        #[command(flatten)]
        admin: AdminArgs,
        /// The bank.
        name: String,
        /// The bank file.
        file: PathBuf,
    },
    /// Remove entries from a bank by id.
    Remove {
        #[command(flatten)]
        admin: AdminArgs,
        /// The bank.
        name: String,
        /// The entry ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Delete a bank.
    Delete {
        #[command(flatten)]
        admin: AdminArgs,
        /// The bank.
        name: String,
    },
}

/// What a bank is for.
#[derive(Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Hashes of known material.
    Match,
    /// Known false positives.
    Allow,
}

/// Run one `enforcer bank` subcommand.
pub fn run(command: BankCommand) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run_remote(command))
}

async fn run_remote(command: BankCommand) -> anyhow::Result<()> {
    let failed = |s: tonic::Status| anyhow::anyhow!("{:?}: {}", s.code(), s.message());
    match command {
        BankCommand::List { admin } => {
            let banks = admin
                .connect()
                .await?
                .list_banks(v1::ListBanksRequest {})
                .await
                .map_err(failed)?
                .into_inner()
                .banks;
            if banks.is_empty() {
                println!("no hash banks");
            }
            for bank in &banks {
                print_status(bank);
            }
        }
        BankCommand::Replace {
            admin,
            name,
            file,
            kind,
            allow_lists,
            max_distance,
        } => {
            let entries = read_entries(&file)?;
            let settings = v1::BankSettings {
                name,
                kind: match kind {
                    KindArg::Match => v1::BankKind::Match,
                    KindArg::Allow => v1::BankKind::Allow,
                }
                .into(),
                allow_lists,
                allow_max_distance: match kind {
                    KindArg::Allow => max_distance.unwrap_or(DEFAULT_ALLOW_DISTANCE),
                    KindArg::Match => max_distance.unwrap_or(0),
                },
            };
            let mut messages = vec![v1::ReplaceBankRequest {
                bank: Some(settings),
                entries: Vec::new(),
            }];
            for chunk in entries.chunks(ENTRIES_PER_CHUNK) {
                messages.push(v1::ReplaceBankRequest {
                    bank: None,
                    entries: chunk.to_vec(),
                });
            }
            let status = admin
                .connect()
                .await?
                .replace_bank(futures_util::stream::iter(messages))
                .await
                .map_err(failed)?
                .into_inner();
            print_status(&status);
        }
        BankCommand::Add { admin, name, file } => {
            let entries = read_entries(&file)?;
            let status = admin
                .connect()
                .await?
                .add_bank_entries(v1::AddBankEntriesRequest {
                    bank: name,
                    entries,
                })
                .await
                .map_err(failed)?
                .into_inner();
            print_status(&status);
        }
        BankCommand::Remove { admin, name, ids } => {
            let status = admin
                .connect()
                .await?
                .remove_bank_entries(v1::RemoveBankEntriesRequest {
                    bank: name,
                    entry_ids: ids,
                })
                .await
                .map_err(failed)?
                .into_inner();
            print_status(&status);
        }
        BankCommand::Delete { admin, name } => {
            admin
                .connect()
                .await?
                .delete_bank(v1::DeleteBankRequest { bank: name.clone() })
                .await
                .map_err(failed)?;
            println!("deleted bank {name}");
        }
    }
    Ok(())
}

/// A bank file's entries as the wire carries them.
fn read_entries(file: &Path) -> anyhow::Result<Vec<v1::BankEntry>> {
    let entries = read_bank_file(file, now_ms())
        .with_context(|| format!("reading bank file {}", file.display()))?;
    Ok(entries.iter().map(entry_to_proto).collect())
}

fn entry_to_proto(entry: &BankEntry) -> v1::BankEntry {
    v1::BankEntry {
        hash: entry.hash.to_vec(),
        id: entry.id.to_string(),
        source: entry.source.to_string(),
        added_at: Some(enforcer::api::timestamp_to_proto(entry.added_at_ms)),
    }
}

fn print_status(status: &v1::BankStatus) {
    let settings = status.bank.clone().unwrap_or_default();
    let purpose = match settings.kind() {
        v1::BankKind::Allow => format!(
            "allow-list, suppresses within {} bits",
            settings.allow_max_distance
        ),
        _ if settings.allow_lists.is_empty() => "match".to_string(),
        _ => format!("match, allow-lists {}", settings.allow_lists.join(", ")),
    };
    println!(
        "{:<24} {:>10} entries  {:>8.1} MB  {purpose}",
        settings.name,
        status.entries,
        status.memory_bytes as f64 / 1e6
    );
}
