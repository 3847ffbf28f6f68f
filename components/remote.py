"""SSH commands as the components use them: one connection shape, one lifecycle, logging off
where secrets flow.

The lifecycle follows pulumi-command v1.2.1 and the Pulumi engine (see docs/lifecycle.md):
- a change to a command's own text is an *update*: the provider runs `update` (else `create`)
  again in place and never the old `delete` (remote/commandController.go, Update);
- only `triggers` replaces (replace-on-changes; pulumi-command#855), and a replacement is
  create-before-delete unless delete-before-replace, so an old `delete` would run *after* the new
  create. A command with a `delete` is therefore always replaced delete-first;
- a command that configures a VM is replaced with it (`replace_with`) and never dials it to
  delete when the VM goes too (`deleted_with`), so `pulumi destroy` works with the VMs gone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pulumi
import pulumi_command as command

# A fresh VM needs a minute or two before sshd answers; keep dialing for up to ~10 minutes.
DIAL_ATTEMPTS = 40
DIAL_TIMEOUT_S = 15


def connection(host: pulumi.Input[str], user: str, private_key: pulumi.Input[str], host_key: pulumi.Input[str],
               port: int = 22) -> command.remote.ConnectionArgs:
    """SSH to `host`, which must prove it holds `host_key` (authorized_keys format): no connection goes unchecked."""
    return command.remote.ConnectionArgs(
        host=host,
        port=port,
        user=user,
        private_key=private_key,
        host_key=host_key,
        dial_error_limit=DIAL_ATTEMPTS,
        per_dial_timeout=DIAL_TIMEOUT_S,
    )


def script_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run(
    name: str,
    conn: command.remote.ConnectionArgs,
    create: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    *,
    update: str | None = None,
    delete: str | None = None,
    stdin: pulumi.Input[str] | None = None,
    secret_stdin: bool = False,
    secret_stdout: bool = False,
    data_stdout: bool = False,
    on: pulumi.Resource | None = None,
    follows: Sequence[pulumi.Resource] = (),
    replace_on: Sequence[pulumi.Input[str]] = (),
    deleted_with: pulumi.Resource | None = None,
) -> command.remote.Command:
    """A remote command that re-runs in place when its text (or stdin) changes.

    `update`: what runs on a change, when it differs from `create` (a check first, a converge later).
    `on`: the VM the command configures. `follows`: other resources whose replacement must re-run it
    (an agent's join follows its server). `replace_on`: values whose change must replace the command
    (a new host to apply to, a script it checks). `deleted_with` (without `on`): a resource whose
    deletion in the same run means this command's delete is not run. Its replacement never runs this
    command's delete: before CLI 3.260 it leaves the command alone, from 3.260 it replaces the
    command and skips the delete (pulumi#23818). With a secret on stdin (`secret_stdin`) or in stdout,
    logging is off, so nothing a script prints about it reaches the engine's log. `data_stdout`: the
    stdout is data for another resource (evidence, a measurement): only stderr is logged.
    """
    quiet = secret_stdin or secret_stdout
    logging = command.remote.Logging.NONE if quiet else command.remote.Logging.STDERR if data_stdout else command.remote.Logging.STDOUT_AND_STDERR
    lifecycle = pulumi.ResourceOptions(
        additional_secret_outputs=["stdout"] if secret_stdout else None,
        delete_before_replace=True if delete is not None else None,
        replace_with=[*([on] if on is not None else []), *follows] or None,
        deleted_with=on or deleted_with,
        depends_on=[on] if on is not None else None,
    )
    return command.remote.Command(
        name,
        command.remote.CommandArgs(
            connection=conn,
            create=create,
            update=update,
            delete=delete,
            stdin=stdin,
            # on by default, it sends PULUMI_COMMAND_STDOUT/STDERR as SSH setenv, which a stock sshd refuses
            add_previous_output_in_env=False,
            triggers=list(replace_on) or None,
            logging=logging,
        ),
        opts=pulumi.ResourceOptions.merge(opts, lifecycle),
    )
