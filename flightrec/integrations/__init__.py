"""Optional integrations; each module is imported only when used (or by ``flightrec.auto``)."""
