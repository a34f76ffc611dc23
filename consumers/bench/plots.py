"""PNG plots of benchmark and demo results (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from stream_al.evaluation import LearningCurve

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


def demo_curves(path: Path, runs: Sequence[tuple[str, LearningCurve]], title: str) -> None:
    """Left: accuracy on recent devices against labels used, over the budgeted range
    (where active and random spend the same). Right: prequential accuracy against
    devices, with the all-labels run for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_labels, by_devices) = plt.subplots(1, 2, figsize=(12, 4.6))
    budgeted = [c for name, c in runs if not name.startswith("all")]
    most = max((c.points[-1][1] for c in budgeted if c.points), default=1)
    for name, curve in runs:
        style = "--" if name.startswith(("all", "random")) else "-"
        points = curve.points
        if not name.startswith("all"):
            by_labels.plot([p[1] for p in points], [p[2] for p in points], style, label=name)
        by_devices.plot([p[0] for p in points], [p[3] for p in points], style, label=name)
    by_labels.set_xlim(0, most * 1.02)
    by_labels.set(title="accuracy on recent devices at equal labels", xlabel="labels used",
                  ylabel="accuracy (recent devices)")
    by_devices.set(title="prequential accuracy along the run", xlabel="devices",
                   ylabel="cumulative accuracy")
    for axis in (by_labels, by_devices):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


#: One panel's lines: a name and (budget, accuracy) points; a reference is a level.
BudgetLines = Mapping[str, Sequence[tuple[float, float]]]


def accuracy_by_budget(path: Path, panels: Mapping[str, BudgetLines],
                       references: Mapping[str, float], title: str) -> None:
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
        axis.set_ylabel("prequential accuracy")
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
