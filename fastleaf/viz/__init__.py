"""See inside models and runs: filters, feature maps, attention, training curves, confusion.

    fastleaf viz filters --checkpoint runs/cnn/best.pt --out viz/
    fastleaf viz feature-maps --checkpoint runs/cnn/best.pt --image leaf.jpg --out viz/

The charts, tables and page rendering here are what ``fastleaf report`` (:mod:`fastleaf.report`)
and the study's report assemble; :mod:`fastleaf.explain` draws its overlays with them.

Every figure is a PNG with a pixel size fixed by its inputs (tile grids) or by ``plots.DPI`` and
the figure size (charts), written with matplotlib's Agg backend (no display needed).
"""
