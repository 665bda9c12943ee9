"""Charts as SVG drawn on the server with pygal, shown as `data:` images.

An SVG shown through <img> runs no script and is styled on its own, so the
pages keep their strict Content-Security-Policy (no inline style or
script); pygal's own tooltip script, which it would load from the
internet, is left out.
"""

import base64

import pygal
from pygal.style import Style

# Readable without colours too: every chart has a title, labelled axes and
# a legend, and its numbers are in a table beside it.
_STYLE = Style(
    background="white",
    plot_background="white",
    font_family="sans-serif",
    colors=("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"),
)


def _config(chart_class, title, labels):
    chart = chart_class(
        title=title,
        style=_STYLE,
        js=(),
        width=640,
        height=280,
        x_label_rotation=30,
        show_minor_x_labels=False,
        legend_at_bottom=True,
        print_values=False,
        disable_xml_declaration=False,
        no_data_text="no usage in this range",
    )
    chart.x_labels = labels
    # Days are many: label about ten of them.
    chart.x_labels_major = labels[:: max(1, len(labels) // 10)]
    return chart


def _uri(chart):
    svg = chart.render()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def stacked(title, labels, series):
    """Bars per label, stacked by series: {name: [value per label]}."""
    chart = _config(pygal.StackedBar, title, labels)
    for name, values in series.items():
        chart.add(name, values)
    return _uri(chart)


def lines(title, labels, series):
    """A line per series: {name: [value per label]}."""
    chart = _config(pygal.Line, title, labels)
    for name, values in series.items():
        chart.add(name, values)
    return _uri(chart)
