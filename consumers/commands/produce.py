"""``stream-al produce``: publish tester output files (STDF V4, CSV, JSONL) as input records.

Exit status: 0 when every part or row became a record the broker acknowledged; 1 when
anything was skipped or not delivered (each one was reported with file and position);
2 for a bad command line or a column mapping that does not fit a file (nothing sent);
3 when no broker answers (nothing sent); 130 when interrupted before the end.
With ``--follow`` a SIGINT or SIGTERM is the normal way to stop: exit 0.

Record ids come from the file's content, never its name, so a renamed or copied file
gives the same ids: STDF ``LOT-WAFER-P<PART_ID>-<n>`` (``-X<x>-Y<y>-S<site>-<n>`` without
a PART_ID; ``n`` the part's place in the file), with the first 16 hex digits of the
file's SHA-256 in place of the lot when the MIR has no LOT_ID, and ``-R<its first 8>``
after a retest's id; CSV/JSONL the ``--id-column`` value, else
``<those 16 hex digits>-L<line>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from consumers.cli import Cli
from consumers.commands._options import BootstrapOption, ConfigOption, settings_or_exit

FileFormat = Literal["auto", "stdf", "csv", "jsonl"]
LabelFrom = Literal["none", "pass_fail", "hard_bin", "soft_bin"]
MprMode = Literal["none", "pins", "summary"]
FtrMode = Literal["none", "pass_fail"]
KeyField = Literal["record_id", "tester_id", "lot_id", "product"]
Kind = Literal["parametric", "transaction"]
STATE_DIR_ENV = "STREAM_AL_STATE_DIR"


def _globs(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def _fields(pairs: list[str] | None) -> dict[str, str]:
    from consumers.produce.tabular.source import FIELD_TYPES

    fields: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, column = pair.partition("=")
        if not sep or name not in FIELD_TYPES or not column:
            allowed = ", ".join(FIELD_TYPES)
            raise typer.BadParameter(
                f"{pair!r}: expected FIELD=COLUMN, FIELD one of {allowed}", param_hint="--column"
            )
        fields[name] = column
    return fields


def register(cli: Cli) -> None:
    @cli.app.command()
    def produce(
        files: Annotated[
            list[Path] | None,
            typer.Argument(
                help="files to publish (.stdf, .std, .stdf.gz, .csv, .jsonl)",
                exists=True,
                dir_okay=False,
            ),
        ] = None,
        file_format: Annotated[
            FileFormat, typer.Option("--format", help="file format; auto goes by the file name")
        ] = "auto",
        topic: Annotated[
            str | None,
            typer.Option(
                help="default: topics.parametric (ate.parametric), or topics.transactions "
                "(ate.transactions) for --kind transaction"
            ),
        ] = None,
        bootstrap_servers: BootstrapOption = None,
        label_from: Annotated[
            LabelFrom,
            typer.Option(help="STDF: attach the part result as the label (evaluation runs)"),
        ] = "none",
        mpr: Annotated[
            MprMode,
            typer.Option(
                help="STDF MPR (one result per pin): summary = <test>@min, @max, @mean; "
                "pins = <test>@<pin> for each pin (PMR name); none = left out"
            ),
        ] = "summary",
        ftr: Annotated[
            FtrMode,
            typer.Option(
                help="STDF FTR (functional tests): pass_fail = <test> 1.0 pass, 0.0 fail; "
                "none = left out"
            ),
        ] = "pass_fail",
        rate: Annotated[float, typer.Option(min=0, help="records/s; 0 = no limit")] = 0.0,
        key: Annotated[
            KeyField, typer.Option(help="record field that keys the message")
        ] = "record_id",
        follow: Annotated[
            Path | None,
            typer.Option(
                help="watch this folder; publish each new complete file once, by content "
                "(a rename or copy is not sent again; links and FIFOs are skipped)",
                exists=True,
                file_okay=False,
            ),
        ] = None,
        settle: Annotated[
            float,
            typer.Option(
                min=0,
                help="--follow: seconds a file's size and mtime must stay unchanged "
                "before it is published (a tester pausing longer looks finished)",
            ),
        ] = 5.0,
        state_dir: Annotated[
            Path | None,
            typer.Option(
                help="where produce remembers the parts it has seen (retests across runs) "
                f"and --follow its ledger (default ${STATE_DIR_ENV}, else ./state)"
            ),
        ] = None,
        poll_interval: Annotated[
            float, typer.Option(min=0.01, help="--follow: seconds between looks at the folder")
        ] = 2.0,
        polls: Annotated[
            int | None,
            typer.Option(min=1, help="--follow: stop after this many polls (cron jobs, tests)"),
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option(help="print the records as JSON lines on stdout instead of sending them"),
        ] = False,
        kind: Annotated[Kind, typer.Option(help="CSV/JSONL: the kind of record")] = "parametric",
        id_column: Annotated[
            str | None,
            typer.Option(
                help="CSV/JSONL: record id column (default: a hash of the file's content "
                "+ the line)"
            ),
        ] = None,
        ts_column: Annotated[
            str | None,
            typer.Option(
                help="CSV/JSONL: time column, ISO 8601 or epoch s/ms (default: file mtime)"
            ),
        ] = None,
        product_column: Annotated[
            str | None, typer.Option(help="CSV/JSONL: product column")
        ] = None,
        product: Annotated[
            str | None,
            typer.Option(
                help="the product for every record (STDF: when the MIR's PART_TYP is empty; "
                "then JOB_NAM, then the file name)"
            ),
        ] = None,
        label_column: Annotated[str | None, typer.Option(help="CSV/JSONL: label column")] = None,
        measurement_columns: Annotated[
            str | None,
            typer.Option(
                help="CSV/JSONL: comma-separated globs (default: every numeric column not "
                "otherwise mapped)"
            ),
        ] = None,
        categorical_columns: Annotated[
            str | None,
            typer.Option(
                help="transactions: comma-separated globs (default: the non-numeric rest)"
            ),
        ] = None,
        column: Annotated[
            list[str] | None,
            typer.Option(
                help="CSV/JSONL: FIELD=COLUMN for tester_id, lot_id, wafer_id, site, die_x, "
                "die_y, test_program (repeatable)"
            ),
        ] = None,
        config: ConfigOption = None,
        flush_timeout: Annotated[
            float, typer.Option(min=1, help="seconds to wait for the broker to acknowledge")
        ] = 120.0,
        simulate: Annotated[bool, typer.Option(
            "--simulate", help="publish a simulated floor instead of files (demos)")] = False,
        records: Annotated[int, typer.Option(
            min=0, help="--simulate: devices to publish (0: until stopped)")] = 0,
        seed: Annotated[int, typer.Option(help="--simulate: seed of the floor")] = 7,
    ) -> None:
        """Publish tester output files (STDF V4, CSV, JSONL) to the input topic.

        Exit 0: all sent; 1: something skipped or undelivered (each reported with file
        and position); 2: bad options or column mapping (nothing sent); 3: no broker.

        Record ids come from the content, never the file name: STDF
        LOT-WAFER-P<PART_ID>-<n> (-X<x>-Y<y>-S<site>-<n> without a PART_ID; n is
        the part's place in the file; a hash of the file stands in for a missing
        LOT_ID; a retest adds -R<hash of its file>); CSV/JSONL the --id-column, else
        <hash of the file>-L<line>.
        """
        from consumers.produce.run import ProduceOptions, run_produce
        from consumers.produce.tabular.source import ColumnMapping

        if not files and follow is None and not simulate:
            raise typer.BadParameter("give FILE…, --follow DIR or --simulate",
                                     param_hint="FILES")
        mapping = ColumnMapping(
            kind=kind,
            id_column=id_column,
            ts_column=ts_column,
            product_column=product_column,
            product=product,
            label_column=label_column,
            measurement_columns=_globs(measurement_columns),
            categorical_columns=_globs(categorical_columns),
            fields=_fields(column),
        )
        options = ProduceOptions(file_format, label_from, mapping, key, rate, mpr, ftr)
        overrides: dict[str, Any] = {"state_dir": state_dir} if state_dir else {}
        # Kafka security settings, topic names and the state dir come from the daemon's config.
        settings = settings_or_exit("produce", config, bootstrap_servers, **overrides)
        topic = topic or settings.topics.for_kind(kind)
        if simulate:
            from consumers.produce.simulated import run_simulated

            raise typer.Exit(run_simulated(records, seed, rate, topic,
                                           settings.kafka, dry_run, key, flush_timeout))
        raise typer.Exit(
            run_produce(
                files or [],
                options,
                topic=topic,
                kafka=settings.kafka,
                dry_run=dry_run,
                follow=follow,
                state_dir=settings.state_dir,
                poll_interval=poll_interval,
                polls=polls,
                flush_timeout=flush_timeout,
                settle=settle,
            )
        )
