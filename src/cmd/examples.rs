//! The examples that end each subcommand's `--help` (clap's `after_long_help`; `-h` leaves
//! them out). Each is a command an operator runs as written, bar the names of files and
//! registries.

pub const LIST: &str = "\
Examples:
  # Every image Rancher 1.6.14 needs, per Kubernetes template
  airlock list --version 1.6.14

  # One reference a line, the server group included, for other tools or pack --images
  airlock list --version 1.6.14 --with-server --format refs > images.txt

  # The releases airlock knows
  airlock list --versions";

pub const PACK: &str = "\
Examples:
  # Every image of Rancher 1.6.14 and its server, in one bundle
  airlock pack --version 1.6.14 --with-server -o bundle-1.6.14.tar.zst

  # Straight onto a FAT32 stick, in parts of less than 4 GiB
  airlock pack --version 1.6.14 -o /media/usb/bundle.tar.zst --split fat32

  # An upgrade: only what the earlier bundle does not carry
  airlock pack --version 1.6.16 --base bundle-1.6.14.tar.zst -o upgrade-1.6.16.tar.zst";

pub const INSPECT: &str = "\
Examples:
  # The images, their target paths, digests and sizes
  airlock inspect bundle.tar.zst

  # bundle.json, for scripts
  airlock inspect bundle.tar.zst --format json | jq '.bundleJson.images[].source'";

pub const VERIFY: &str = "\
Examples:
  # Every byte, and the bundle.tar.zst.sha256 beside it
  airlock verify bundle.tar.zst

  # A bundle split into parts, named by its first part
  airlock verify /media/usb/bundle.tar.zst.000

  # Standard input, in one pass
  cat bundle.tar.zst | airlock verify -";

pub const UNPACK: &str = "\
Examples:
  # Every image, at the paths Rancher asks for
  airlock unpack bundle.tar.zst --registry reg.local:5000

  # Where each image would go under a Harbor project; nothing is pushed
  airlock unpack bundle.tar.zst --registry harbor.local --prefix rancher-mirror/ --dry-run

  # A plain-http registry with a user and password
  airlock unpack bundle.tar.zst --registry http://10.0.0.5:5000 --username admin --password-stdin < pw.txt";

pub const INVENTORY: &str = "\
Examples:
  # What the private registry holds, to carry back to the connected side
  airlock inventory --registry reg.local:5000 > inventory.json

  # There: a delta bundle without what the registry holds already
  airlock pack --version 1.6.16 --base-registry-inventory inventory.json -o delta.tar.zst";

pub const COMPLETIONS: &str = "\
Examples:
  # bash, for the current user (bash-completion 2.x)
  mkdir -p ~/.local/share/bash-completion/completions
  airlock completions bash > ~/.local/share/bash-completion/completions/airlock

  # zsh: a directory on $fpath
  airlock completions zsh > \"${fpath[1]}/_airlock\"

  # fish
  airlock completions fish > ~/.config/fish/completions/airlock.fish";

pub const MAN: &str = "\
Examples:
  # Read it without installing it
  airlock man | man -l -

  # Install the pages of airlock and each of its commands
  sudo airlock man --dir /usr/local/share/man/man1 && man airlock-pack";

pub const LOGIN: &str = "\
Examples:
  # Asked for the user and the password (no echo), checked, saved in ~/.docker/config.json
  airlock login reg.local:5000

  # From a script: the password on standard input
  airlock login docker.io --username ops --password-stdin < pw.txt";

pub const LOGOUT: &str = "\
Examples:
  # Forget the credentials of a registry (from its credential helper too)
  airlock logout reg.local:5000

  # Docker Hub, under any of its names
  airlock logout docker.io";
