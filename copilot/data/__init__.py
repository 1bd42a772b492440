"""Tables in and out: loading and checking a table, export, the pipeline spec and its script, previews of a
change, fault injection and the demo data. Nothing here knows about sessions."""
