//! `airlock login` and `airlock logout`: credentials checked against the registry, then kept
//! where Docker keeps them (`config.json`, or its credential helper), for every later command.

use airlock::registry::config_file::{self, Removed, Saved};
use airlock::registry::{self, Client, Credentials, LoginCheck};
use anyhow::{bail, Context as _, Result};

use super::cli::{LoginArgs, LogoutArgs, ProgressMode};
use super::progress::Stderr;
use super::{connect_options, err, out, prompt};

pub fn run(args: LoginArgs) -> Result<i32> {
    let host = args.registry.host.clone();
    let path = config_path()?;
    let terminal = prompt::stdin_is_terminal();
    let user = match &args.username {
        Some(u) => u.clone(),
        None if terminal => prompt::ask("Username: ", true)?,
        None => bail!("standard input is not a terminal to ask on: give --username, and the password with --password-stdin"),
    };
    if user.is_empty() {
        bail!("the user name is empty");
    }
    let password = match (args.password_stdin, terminal) {
        (true, _) => prompt::password_stdin(&user, &host)?,
        (false, true) => prompt::ask("Password: ", false)?,
        (false, false) => bail!("standard input is not a terminal to ask on: pipe the password in with --password-stdin"),
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let creds = Credentials::new(user, password);
    // Only the credentials typed here: config.json's own (or its helpers) play no part.
    let mut opts = connect_options(&args.connect);
    if let Some(e) = &args.registry.endpoint {
        opts.endpoints.push((host.clone(), e.clone()));
    }
    opts.credentials.insert(&host, creds.clone());
    let client = Client::new(opts)?;
    let check = client
        .observe(&Stderr::new(false, ProgressMode::Auto), || {
            client.check_login(&host)
        })
        .with_context(|| format!("logging in to {host}: nothing was saved"))?;
    if check == LoginCheck::NotAsked {
        err(&format!(
            "warning: {host} answered without asking for credentials, so they could not be checked; they are saved all the same"
        ));
    }
    let saved = config_file::save(&path, &host, &creds)
        .with_context(|| format!("saving the credentials for {host}"))?;
    match saved {
        Saved::File(file) => {
            err(&format!(
                "warning: the password is stored unencrypted (base64) in {} (mode 0600); a credential helper (credsStore in that file) keeps it elsewhere",
                file.display()
            ));
            out(&format!(
                "Login succeeded: credentials for {} saved in {}",
                registry::config_key(&host),
                file.display()
            ));
        }
        Saved::Helper { name, file } => out(&format!(
            "Login succeeded: credentials for {} stored with docker-credential-{name} (configured in {})",
            registry::config_key(&host),
            file.display()
        )),
    }
    Ok(0)
}

pub fn logout(args: LogoutArgs) -> Result<i32> {
    let host = &args.registry.host;
    let path = config_path()?;
    let Removed { keys, helper } = config_file::remove(&path, host)
        .with_context(|| format!("removing the credentials for {host}"))?;
    if keys.is_empty() {
        out(&format!(
            "Not logged in to {host}: {} has no entry for it",
            path.display()
        ));
        return Ok(0);
    }
    if let Some((_, Some(problem))) = &helper {
        err(&format!(
            "warning: {problem}; the secret may still be kept there"
        ));
    }
    out(&format!(
        "Removed the credentials for {host} from {}{}",
        path.display(),
        match &helper {
            Some((name, None)) => format!(" and docker-credential-{name}"),
            _ => String::new(),
        }
    ));
    Ok(0)
}

/// Docker's `config.json`: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn config_path() -> Result<std::path::PathBuf> {
    registry::docker_config_path()
        .context("neither DOCKER_CONFIG nor HOME is set: there is no Docker config.json to use")
}
