"""The ``flightrec`` command line: one module per verb, dispatched from :mod:`.main`."""
