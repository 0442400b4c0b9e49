"""Everything that speaks Jira (Cloud REST v3 with ADF, Server/Data Center REST v2 with wiki).

Raw Jira JSON stays inside this package: callers get our own types and the named exceptions
of :mod:`.errors`.
"""
