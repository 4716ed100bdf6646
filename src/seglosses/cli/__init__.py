"""The ``seglosses`` command line: scan a mask dataset, train a U-Net with any loss, compare
losses and report. Every subcommand is a thin layer over an importable function of the modules
here (``data``, ``scan``, ``unet``, ``expr``, ``train``, ``compare``, ``report``)."""
