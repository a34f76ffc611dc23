"""PNG plots of benchmark and demo results (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: One labelled curve: a name and (labels used, accuracy) points.
Curve = tuple[str, Sequence[tuple[int, float]]]


def learning_curves(path: Path, panels: Mapping[str, Sequence[Curve]], title: str) -> None:
    """One panel per dataset (or budget): accuracy against labels used, per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(1, len(panels))
    columns = min(3, count)
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4.2 * rows),
                                squeeze=False)
    for axis, (panel, curves) in zip(axes.flat, panels.items(), strict=False):
        for name, points in curves:
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, label=name, linewidth=1.4,
                          linestyle="--" if name.startswith(("all", "random")) else "-")
        axis.set_title(panel)
        axis.set_xlabel("labels used")
        axis.set_ylabel("accuracy (recent records)")
        axis.set_xscale("symlog", linthresh=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[count:]:
        axis.set_visible(False)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


@dataclass(frozen=True)
class DemoLine:
    """One arm of the demo as its plot draws it."""

    name: str
    devices: Sequence[int]
    #: Balanced accuracy and escape rate on the recent devices (None: no fail among them).
    balanced: Sequence[float]
    escape: Sequence[float | None]
    #: (labels used, prequential balanced accuracy): where annotation savings are read.
    balanced_by_labels: Sequence[tuple[int, float]]
    #: False for the all-labels reference, which has no budget to compare at.
    budgeted: bool = True


#: The text of the vertical marker at the rare failure mode's first possible device.
RARE_MODE_MARKER = "rare failure mode begins"


def demo_figure(lines: Sequence[DemoLine], rare_mode_begins: int, target: float | None,
                title: str) -> Figure:
    """Balanced accuracy and escape rate on recent devices along the run, the rare
    failure mode's onset marked on both; and prequential balanced accuracy against labels
    used over the budgeted range, with the level ``target`` (95 % of the all-labels run's)
    annotation savings are read at. The caller closes the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (balanced, escape, by_labels) = plt.subplots(1, 3, figsize=(16, 4.6))
    most = max((line.balanced_by_labels[-1][0] for line in lines
                if line.budgeted and line.balanced_by_labels), default=1)
    for line in lines:
        style = "-" if line.budgeted and not line.name.startswith("random") else "--"
        balanced.plot(line.devices, line.balanced, style, label=line.name)
        escape.plot(line.devices, [float("nan") if e is None else e for e in line.escape],
                    style, label=line.name)
        if line.budgeted and line.balanced_by_labels:
            xs, ys = zip(*line.balanced_by_labels, strict=True)
            by_labels.plot(xs, ys, style, label=line.name)
    for axis in (balanced, escape):
        axis.axvline(rare_mode_begins, color="crimson", linestyle=":", linewidth=1.4,
                     label=f"{RARE_MODE_MARKER} (device {rare_mode_begins:,})")
    if target is not None:
        by_labels.axhline(target, color="black", linestyle=":", linewidth=1,
                          label="95 % of the all-labels balanced accuracy")
    by_labels.set_xlim(0, most * 1.02)
    balanced.set(title="balanced accuracy on recent devices", xlabel="devices",
                 ylabel="balanced accuracy (recent devices)")
    escape.set(title="escape rate on recent devices (fails predicted pass)",
               xlabel="devices", ylabel="escape rate (recent devices)")
    by_labels.set(title="prequential balanced accuracy at equal labels",
                  xlabel="labels used", ylabel="balanced accuracy (since the first device)")
    for axis in (balanced, escape, by_labels):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def demo_curves(path: Path, lines: Sequence[DemoLine], rare_mode_begins: int,
                target: float | None, title: str) -> None:
    """The demo's PNG (``demo_figure``)."""
    import matplotlib.pyplot as plt

    figure = demo_figure(lines, rare_mode_begins, target, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


#: One panel's lines: a name and (budget, accuracy) points; a reference is a level.
BudgetLines = Mapping[str, Sequence[tuple[float, float]]]


def accuracy_by_budget(path: Path, panels: Mapping[str, BudgetLines],
                       references: Mapping[str, float], title: str,
                       score: str = "prequential accuracy") -> None:
    """One panel per configuration: accuracy against the label budget, one line per
    arm, the all-labels accuracy as a dotted level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(1, len(panels))
    columns = min(4, count)
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.8 * rows),
                                squeeze=False)
    for axis, (panel, lines) in zip(axes.flat, panels.items(), strict=False):
        for name, points in lines.items():
            xs, ys = zip(*sorted(points), strict=True)
            axis.plot([100 * x for x in xs], ys, marker="o", markersize=3, linewidth=1.2,
                      label=name, linestyle="-" if name.startswith("stream-al") else "--")
        if panel in references:
            axis.axhline(references[panel], color="black", linestyle=":", linewidth=1,
                         label="all labels")
        axis.set_title(panel)
        axis.set_xlabel("label budget (% of records)")
        axis.set_ylabel(score)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[count:]:
        axis.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8)
    figure.suptitle(title)
    # Room below the panels for the shared legend: about 0.7 inch of the figure's height.
    figure.tight_layout(rect=(0, 0.7 / (3.8 * rows), 1, 1 - 0.3 / (3.8 * rows)))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
