"""``codeactions secrets``: make a key, re-encrypt every stored secret with the newest key."""

from __future__ import annotations

import argparse

from codeactions_core.secret_box import new_key
from codeactions_core.services.secrets import SecretService
from codeactions_core.settings import Settings
from codeactions_core.wiring import ready_store


def register(commands: argparse._SubParsersAction) -> None:
    secrets = commands.add_parser("secrets", help="project secrets: new-key | rotate")
    actions = secrets.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "new-key", help="print a new random key for FLOWS_CODE_ACTIONS_SECRETS_KEY"
    ).set_defaults(handler=run, run_action=new_key_command)
    actions.add_parser(
        "rotate",
        help="re-encrypt every stored secret with the first key of FLOWS_CODE_ACTIONS_SECRETS_KEY",
    ).set_defaults(handler=run, run_action=rotate_command)


def run(settings: Settings, args: argparse.Namespace) -> int:
    return args.run_action(settings, args)


def new_key_command(settings: Settings, args: argparse.Namespace) -> int:
    print(new_key())
    return 0


def rotate_command(settings: Settings, args: argparse.Namespace) -> int:
    store = ready_store(settings)
    try:
        rotation = SecretService(store.secrets, settings.secrets_key).rotate()
    finally:
        store.close()
    plural = "" if rotation.rotated == 1 else "s"
    print(f"re-encrypted {rotation.rotated} secret{plural} with the newest key")
    if rotation.changed_meanwhile:
        print(f"{rotation.changed_meanwhile} changed or were deleted meanwhile (already current)")
    if rotation.undecryptable:
        print("no configured key decrypts: " + ", ".join(rotation.undecryptable))
        return 1
    return 0
