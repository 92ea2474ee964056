"""Pipeline glue between params.yaml, the data layout and the library; the stage scripts call into it."""
