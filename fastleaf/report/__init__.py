"""``fastleaf report``: the Results section of finished runs, one HTML and Markdown document.

    from fastleaf.report.build import build_report
    paths = build_report(["runs/cnn", "runs/resnet18"], "report/")

It assembles what the floors below draw and compute: :mod:`fastleaf.viz`'s charts and tables,
the runs' validation predictions (:mod:`fastleaf.predict`) and :mod:`fastleaf.explain`'s
class-activation overlays in the top-losses gallery.
"""
