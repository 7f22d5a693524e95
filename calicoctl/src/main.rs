//! The `calicoctl` binary: flags in, outcome out. The work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use calicoctl::commands::{self, Action, Outcome, Output, Selection, Session};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "calicoctl",
    about = "Manage Calico resources",
    disable_version_flag = true
)]
struct Cli {
    /// Log level: debug, info, warn, error, fatal, panic (logs go to stderr).
    #[arg(
        short = 'l',
        long = "log-level",
        global = true,
        default_value = "panic"
    )]
    log_level: String,
    /// Accepted for compatibility; client and cluster versions are not compared.
    #[arg(long = "allow-version-mismatch", global = true)]
    allow_version_mismatch: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
struct Common {
    /// Path to the file containing connection configuration in YAML or JSON format.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Namespace of the resource.
    #[arg(short = 'n', long = "namespace")]
    namespace: Option<String>,
    /// Accepted for compatibility (Kubernetes context); unused with etcd.
    #[arg(long = "context")]
    context: Option<String>,
}

#[derive(Args, Clone)]
struct FileArgs {
    /// Filename to use to create/apply/replace/delete the resource. Use '-' for stdin.
    #[arg(short = 'f', long = "filename")]
    filename: String,
    /// Process the directory given with -f recursively.
    #[arg(short = 'R', long = "recursive")]
    recursive: bool,
    /// Do not error if files contain no data.
    #[arg(long = "skip-empty")]
    skip_empty: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
enum Command {
    /// Create a resource by file or stdin.
    Create {
        #[command(flatten)]
        file: FileArgs,
        /// Skip over resources that already exist.
        #[arg(long = "skip-exists")]
        skip_exists: bool,
    },
    /// Apply a resource by file or stdin: create it, or update it if it exists.
    Apply {
        #[command(flatten)]
        file: FileArgs,
    },
    /// Replace a resource by file or stdin.
    Replace {
        #[command(flatten)]
        file: FileArgs,
    },
    /// Delete resources by file, stdin, or kind and name.
    Delete {
        kind: Option<String>,
        names: Vec<String>,
        #[arg(short = 'f', long = "filename")]
        filename: Option<String>,
        /// Skip over resources that do not exist.
        #[arg(short = 's', long = "skip-not-exists")]
        skip_not_exists: bool,
        /// Process the directory given with -f recursively.
        #[arg(short = 'R', long = "recursive")]
        recursive: bool,
        /// Do not error if files contain no data.
        #[arg(long = "skip-empty")]
        skip_empty: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Get resources by file, stdin, or kind and name.
    Get {
        kind: Option<String>,
        names: Vec<String>,
        #[arg(short = 'f', long = "filename")]
        filename: Option<String>,
        /// Output format: yaml, json, ps, wide, custom-columns=...
        #[arg(short = 'o', long = "output", default_value = "ps")]
        output: String,
        /// List the requested object(s) across all namespaces.
        #[arg(short = 'A', long = "all-namespaces", visible_short_alias = 'a')]
        all_namespaces: bool,
        /// Strip cluster-specific information from the output.
        #[arg(long = "export")]
        export: bool,
        /// Process the directory given with -f recursively.
        #[arg(short = 'R', long = "recursive")]
        recursive: bool,
        /// Do not error if files contain no data.
        #[arg(long = "skip-empty")]
        skip_empty: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Patch a resource.
    Patch {
        kind: String,
        name: String,
        /// Spec to use to patch the resource.
        #[arg(short = 'p', long = "patch")]
        patch: String,
        /// Format of patch type: strategic, json, or merge.
        #[arg(short = 't', long = "type", default_value = "strategic")]
        patch_type: String,
        #[command(flatten)]
        common: Common,
    },
    /// Add, update or remove a label of a resource.
    Label {
        kind: String,
        name: String,
        /// key=value, or key with --remove.
        label: String,
        /// Overwrite the value when the key is already present in labels.
        #[arg(long = "overwrite")]
        overwrite: bool,
        /// Remove the specified key from labels.
        #[arg(long = "remove")]
        remove: bool,
        #[command(flatten)]
        common: Common,
    },
    /// IP address management.
    Ipam {
        #[command(subcommand)]
        command: IpamCommand,
    },
    /// Calico node management (only `status`).
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Calico datastore management.
    Datastore {
        #[command(subcommand)]
        command: DatastoreCommand,
    },
    /// Display the version of this binary and of the cluster.
    Version {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Only show the client version.
        #[arg(long = "client")]
        client: bool,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// View the current status of a Calico node: its BGP sessions.
    Status,
}

#[derive(Subcommand)]
enum DatastoreCommand {
    /// Migrate the contents of an etcdv3 datastore to a Kubernetes datastore (only `lock` and
    /// `unlock` are implemented).
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
}

#[derive(Subcommand)]
enum MigrateCommand {
    /// Lock the datastore: mark it not ready, so nodes stop changing it.
    Lock {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Unlock the datastore: mark it ready again.
    Unlock {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum IpamCommand {
    /// Check the integrity of the IPAM datastructures.
    Check {
        /// Print all IPs that are checked.
        #[arg(long = "show-all-ips")]
        show_all_ips: bool,
        /// Print all IPs that are leaked or not allocated properly.
        #[arg(long = "show-problem-ips")]
        show_problem_ips: bool,
        /// Path to output report file.
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
        /// Accepted for compatibility; there are no Kubernetes Services to read.
        #[arg(long = "kubeconfig")]
        kubeconfig: Option<String>,
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Release a Calico assigned IP address.
    Release {
        /// IP address to release.
        #[arg(long = "ip")]
        ip: Option<String>,
        /// Release all leaked addresses from the report.
        #[arg(long = "from-report")]
        from_report: Vec<String>,
        /// Force release of leaked addresses.
        #[arg(long = "force")]
        force: bool,
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Show details of a Calico assigned IP address or overall IP usage.
    Show {
        /// Report whether this specific IP address is in use.
        #[arg(long = "ip")]
        ip: Option<String>,
        /// Show detailed information for IP blocks as well as pools.
        #[arg(long = "show-blocks")]
        show_blocks: bool,
        /// Show detailed information for borrowed IP addresses.
        #[arg(long = "show-borrowed")]
        show_borrowed: bool,
        /// Show current Calico IPAM configuration.
        #[arg(long = "show-configuration")]
        show_configuration: bool,
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Split an IP pool into the specified number of smaller IP pools.
    Split {
        number: String,
        /// CIDR of the IP pool to split.
        #[arg(long = "cidr")]
        cidr: Option<String>,
        /// Name of the IP pool to split.
        #[arg(long = "name")]
        name: Option<String>,
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Configure IPAM.
    Configure {
        /// Set StrictAffinity to true/false.
        #[arg(long = "strictaffinity")]
        strict_affinity: Option<String>,
        /// Set the maximum number of blocks that can be affine to a host.
        #[arg(long = "max-blocks-per-host")]
        max_blocks_per_host: Option<String>,
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
}

async fn run_ipam(command: IpamCommand) -> Outcome {
    use calicoctl::ipam;
    match command {
        IpamCommand::Check {
            show_all_ips,
            show_problem_ips,
            output,
            kubeconfig: _,
            config,
        } => {
            let args = ipam::CheckArgs {
                show_all_ips,
                show_problem_ips,
                output,
            };
            ipam::check(&mut Session::new(config), &args).await
        }
        IpamCommand::Release {
            ip,
            from_report,
            force,
            config,
        } => {
            let args = ipam::ReleaseArgs {
                ip,
                from_report,
                force,
            };
            ipam::release(&mut Session::new(config), &args).await
        }
        IpamCommand::Show {
            ip,
            show_blocks,
            show_borrowed,
            show_configuration,
            config,
        } => {
            let args = ipam::ShowArgs {
                ip,
                show_blocks,
                show_borrowed,
                show_configuration,
            };
            ipam::show(&mut Session::new(config), &args).await
        }
        IpamCommand::Split {
            number,
            cidr,
            name,
            config,
        } => {
            ipam::split(
                &mut Session::new(config),
                &number,
                cidr.as_deref(),
                name.as_deref(),
            )
            .await
        }
        IpamCommand::Configure {
            strict_affinity,
            max_blocks_per_host,
            config,
        } => {
            ipam::configure(
                &mut Session::new(config),
                strict_affinity.as_deref(),
                max_blocks_per_host.as_deref(),
            )
            .await
        }
    }
}

fn init_logs(level: &str) {
    // calicoctl logs nothing by default ("panic"); anything from debug to error goes to stderr.
    let filter = match level {
        "debug" | "info" | "warn" | "error" | "trace" => level,
        "warning" => "warn",
        _ => "off",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
}

async fn run(cli: Cli) -> Outcome {
    let _ = cli.allow_version_mismatch;
    let file_sel = |f: &FileArgs| Selection {
        filename: Some(f.filename.clone()),
        namespace: f.common.namespace.clone(),
        skip_empty: f.skip_empty,
        recursive: f.recursive,
        ..Default::default()
    };
    match cli.command {
        Command::Create { file, skip_exists } => {
            let sel = Selection {
                skip_exists,
                ..file_sel(&file)
            };
            commands::write(&mut Session::new(file.common.config), Action::Create, &sel).await
        }
        Command::Apply { file } => {
            let sel = file_sel(&file);
            commands::write(&mut Session::new(file.common.config), Action::Apply, &sel).await
        }
        Command::Replace { file } => {
            let sel = file_sel(&file);
            commands::write(&mut Session::new(file.common.config), Action::Replace, &sel).await
        }
        Command::Delete {
            kind,
            names,
            filename,
            skip_not_exists,
            recursive,
            skip_empty,
            common,
        } => {
            let sel = Selection {
                filename,
                kind,
                names,
                namespace: common.namespace,
                skip_not_exists,
                skip_empty,
                recursive,
                ..Default::default()
            };
            commands::write(&mut Session::new(common.config), Action::Delete, &sel).await
        }
        Command::Get {
            kind,
            names,
            filename,
            output,
            all_namespaces,
            export,
            recursive,
            skip_empty,
            common,
        } => {
            let output = match Output::parse(&output) {
                Ok(o) => o,
                Err(e) => {
                    return Outcome {
                        stderr: format!("{e}\n"),
                        code: 1,
                        ..Default::default()
                    };
                }
            };
            let sel = Selection {
                filename,
                kind,
                names,
                namespace: common.namespace,
                all_namespaces,
                recursive,
                skip_empty,
                ..Default::default()
            };
            commands::get(&mut Session::new(common.config), &sel, &output, export).await
        }
        Command::Patch {
            kind,
            name,
            patch,
            patch_type,
            common,
        } => {
            let sel = Selection {
                kind: Some(kind),
                names: vec![name],
                namespace: common.namespace,
                ..Default::default()
            };
            commands::patch(&mut Session::new(common.config), &sel, &patch, &patch_type).await
        }
        Command::Label {
            kind,
            name,
            label,
            overwrite,
            remove,
            common,
        } => {
            let sel = Selection {
                kind: Some(kind),
                names: vec![name],
                namespace: common.namespace,
                ..Default::default()
            };
            commands::label(
                &mut Session::new(common.config),
                &sel,
                &label,
                overwrite,
                remove,
            )
            .await
        }
        Command::Ipam { command } => run_ipam(command).await,
        Command::Node {
            command: NodeCommand::Status,
        } => {
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            calicoctl::node::status(&bgp::status::socket_path(), root)
        }
        Command::Datastore {
            command: DatastoreCommand::Migrate { command },
        } => match command {
            MigrateCommand::Lock { config } => {
                calicoctl::datastore_cmd::set_locked(&mut Session::new(config), true).await
            }
            MigrateCommand::Unlock { config } => {
                calicoctl::datastore_cmd::set_locked(&mut Session::new(config), false).await
            }
        },
        Command::Version { config, client } => {
            commands::version(&mut Session::new(config), client).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.log_level);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    print!("{}", outcome.stdout);
    eprint!("{}", outcome.stderr);
    if outcome.code == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
