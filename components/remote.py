"""SSH commands as the components use them: one connection shape, logging off where secrets flow."""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_command as command

# A fresh VM needs a minute or two before sshd answers; keep dialing for up to ~10 minutes.
DIAL_ATTEMPTS = 40
DIAL_TIMEOUT_S = 15


def connection(host: pulumi.Input[str], user: str, private_key: pulumi.Input[str], port: int = 22) -> command.remote.ConnectionArgs:
    return command.remote.ConnectionArgs(
        host=host,
        port=port,
        user=user,
        private_key=private_key,
        dial_error_limit=DIAL_ATTEMPTS,
        per_dial_timeout=DIAL_TIMEOUT_S,
    )


def script_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run(
    name: str,
    conn: command.remote.ConnectionArgs,
    create: str,
    opts: pulumi.ResourceOptions,
    *,
    stdin: pulumi.Input[str] | None = None,
    delete: str | None = None,
    secret_stdout: bool = False,
    extra_triggers: list[pulumi.Input[str]] | None = None,
) -> command.remote.Command:
    """A remote command re-run exactly when its text changes (the trigger is the text's hash).

    With a secret on stdin or in stdout, logging is off so nothing secret reaches the engine's log.
    """
    quiet = stdin is not None or secret_stdout
    return command.remote.Command(
        name,
        command.remote.CommandArgs(
            connection=conn,
            create=create,
            update=create,
            delete=delete,
            stdin=stdin,
            # on by default, it sends PULUMI_COMMAND_STDOUT/STDERR as SSH setenv, which a stock sshd refuses
            add_previous_output_in_env=False,
            triggers=[script_hash(create), *(extra_triggers or [])],
            logging=command.remote.Logging.NONE if quiet else command.remote.Logging.STDOUT_AND_STDERR,
        ),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["stdout"] if secret_stdout else None)),
    )
