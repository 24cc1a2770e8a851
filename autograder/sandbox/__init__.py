"""The trusted side of the process boundary: the worker process and its isolation, the session
that speaks to it, the `student` proxies and the `probe` instruments. Student code never runs here."""
