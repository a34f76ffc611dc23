"""``stream-al desk``: the labelling desk, a web page for engineers answering queries."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from consumers.cli import Cli
from consumers.commands import _options as shared

#: Options that override the settings' ``desk`` section (STREAM_AL_DESK__*) when given.
LabelerOption = Annotated[str | None, typer.Option(
    help="name on every label (default: desk.labeler; unset: each person logs in)")]
ClaimMinutesOption = Annotated[float | None, typer.Option(
    min=0.05, help="minutes a card stays reserved for whoever opened it (default: "
    "desk.claim_minutes, 5)")]
LocalClaimsOption = Annotated[bool | None, typer.Option(
    "--local-claims/--shared-claims", help="keep claims in this process only (then run no "
    "other desk or terminal on these topics); default: share them on topics.claims")]


def desk_overrides(**given: Any) -> dict[str, Any]:
    """The desk options that were given, as a settings override."""
    chosen = {name: value for name, value in given.items() if value is not None}
    return {"desk": chosen} if chosen else {}


def register(cli: Cli) -> None:
    @cli.app.command()
    def desk(
        config: shared.ConfigOption = None,
        bootstrap_servers: shared.BootstrapOption = None,
        host: Annotated[str | None, typer.Option(
            help="address to listen on (default: desk.host, 127.0.0.1; 0.0.0.0: the LAN)")]
        = None,
        port: Annotated[int | None, typer.Option(
            min=0, max=65535, help="default: desk.port, 8765; 0 picks a free port")] = None,
        labeler: LabelerOption = None,
        claim_minutes: ClaimMinutesOption = None,
        local_claims: LocalClaimsOption = None,
    ) -> None:
        """Serve the labelling desk: a live queue of oracle requests, one key per class."""
        from consumers.oracle.desk.serve import serve
        from stream_al.errors import StreamAlError

        shared.setup_logging(fmt="%(asctime)s %(levelname)s %(message)s")
        settings = shared.settings_or_exit("desk", config, bootstrap_servers, **desk_overrides(
            host=host, port=port, labeler=labeler, claim_minutes=claim_minutes,
            local_claims=local_claims))
        try:
            serve(settings)
        except (StreamAlError, OSError) as error:
            shared.fail("desk", error)
