"""See inside models and runs: filters, feature maps, attention, training curves and reports.

    fastleaf viz filters --checkpoint runs/cnn/best.pt --out viz/
    fastleaf viz feature-maps --checkpoint runs/cnn/best.pt --image leaf.jpg --out viz/
    fastleaf report runs/cnn runs/resnet18 --out report/

Every figure is a PNG with a pixel size fixed by its inputs (tile grids) or by ``plots.DPI`` and
the figure size (charts), written with matplotlib's Agg backend (no display needed).
"""
