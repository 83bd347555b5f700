"""Reading evidence from disk: node snapshot directories (and, later, bundles).

This is an edge module: it reads files and hands their text to the pure parsers.
"""
